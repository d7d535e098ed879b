import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A broker with thousands of files: a full sync holds a bounded number of descriptors, not
/// one per file, and a file that changes under a sync ends it cleanly; a follower's append
/// handles stay within its own bound.
@Suite("Many files", .serialized, .heavy)
struct ManyFilesTests {
    /// Samples this process's open descriptors every few milliseconds while `body` runs, and
    /// returns the peak above where it started with `body`'s result.
    static func peakDescriptors<T>(during body: () async throws -> T) async throws -> (peak: Int, result: T) {
        let baseline = ResourceBoundsTests.openDescriptors()
        let peak = Mutex(baseline)
        let sampler = Task {
            while !Task.isCancelled {
                let now = ResourceBoundsTests.openDescriptors()
                peak.withLock { $0 = max($0, now) }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        defer { sampler.cancel() }
        let result = try await body()
        return (peak.withLock { $0 } - baseline, result)
    }

    /// 3,000 files: the leader's writers, the full sync and the follower's appends each keep
    /// to their own bound, so the process never holds a descriptor per file. Before the sync
    /// opened files as it reached them, this sync alone held all 3,000.
    @Test func aFullSyncOfThreeThousandFilesHoldsBoundedDescriptors() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let files = 3_000
        let (leaderBound, syncBound, followerBound) = (32, 16, 32)
        try await withLeader(cluster, configure: {
            $0.maximumOpenFiles = leaderBound
            $0.fullSyncOpenFiles = syncBound
        }) { leader, port in
            for index in 0..<files {
                try await leader.append(to: "queues/\(index % 100)/segment-\(index)", bytes: ByteBuffer(string: "message \(index)\n"))
            }
            let (peak, _) = try await Self.peakDescriptors {
                try await withFollower(cluster, "f", port: port, configure: { $0.maximumOpenFiles = followerBound }) { follower in
                    let streaming = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) { follower.status().phase == .streaming }
                    #expect(streaming, "\(follower.status())")
                    // And appends to every file while it streams: the follower's handles cycle.
                    for index in 0..<files {
                        try await leader.append(to: "queues/\(index % 100)/segment-\(index)", bytes: ByteBuffer(string: "again \(index)\n"))
                    }
                    let last = leader.lastLSN
                    let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) { follower.status().lastDurableLSN == last }
                    #expect(converged, "\(follower.status())")
                }
            }
            let bound = leaderBound + syncBound + 2 + followerBound + ResourceBoundsTests.descriptorMargin
            print("full sync of \(files) files and a round of appends: peak \(peak) descriptors above the start (bound \(bound))")
            #expect(peak <= bound, "\(peak) descriptors for \(files) files")
            #expect(leader.status().fullSyncs == 1)
            let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
            #expect(expected.count == files)
            #expect(try ReplicationTestCluster.files(under: cluster.root + "/f") == expected)
        }
    }

    /// A file the sync had not opened before its cut is deleted while the sync sends others:
    /// when the sync reaches it the content of the cut is gone, so the sync ends with
    /// `full-sync-failed`, and the follower syncs again, keeping what it received, and converges.
    @Test func aFileDeletedBeforeTheSyncReachesItEndsTheSyncAndTheFollowerSyncsAgain() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: {
            $0.fullSyncOpenFiles = 1
            // Two files of 2 MiB of random bytes take about 8 s at this rate. The sync reads
            // one frame ahead, so "c" is read only once "b-big" is nearly sent: time to delete it.
            $0.catchUpBytesPerSecond = 512 << 10
        }) { leader, port in
            var random = SystemRandomNumberGenerator()
            for name in ["a-big", "b-big"] {
                try await leader.append(to: name, bytes: ByteBuffer(bytes: (0..<(2 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }))
            }
            // The manifest opens the small files one after the other and keeps the last two: "c" is closed again.
            for name in ["c", "d", "e", "f", "g"] { try await leader.append(to: name, bytes: ByteBuffer(string: "file \(name)\n")) }
            try await withFollower(cluster, "f", port: port) { follower in
                let sending = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(60)) {
                    (leader.status().followers.first?.fullSync?.bytesDone ?? 0) > 0
                }
                #expect(sending, "\(leader.status())")
                try await leader.delete("c")
                let failed = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(60)) {
                    leader.status().evictions[.fullSyncFailed, default: 0] >= 1
                }
                #expect(failed, "\(leader.status().recentEvictions)")
                let detail = leader.status().recentEvictions.first { $0.reason == .fullSyncFailed }?.detail ?? ""
                #expect(detail.contains("c was replaced or deleted after the full sync's cut"), "\(detail)")
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(60)) {
                    follower.status().phase == .streaming && follower.status().lastDurableLSN >= last
                }
                #expect(converged, "\(follower.status())")
            }
            #expect(leader.status().fullSyncs >= 2)
            // The second sync kept what the first one delivered.
            #expect(leader.status().fullSyncBytes < 2 * 4 << 20, "\(leader.status().fullSyncBytes) bytes sent in all")
            let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
            #expect(expected["c"] == nil)
            #expect(try ReplicationTestCluster.files(under: cluster.root + "/f") == expected)
        }
    }

    /// The follower closes its least recently used append handles first: a file appended to
    /// on every turn keeps its handle while others come and go.
    @Test func theFollowerClosesItsLeastRecentlyUsedAppendHandles() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-applier-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let applier = RecordApplier(directory: try DataDirectory(path: root), durable: false, maximumOpenFiles: 8)
        let hot = try ReplicatedPath("hot")
        var hotSize: UInt64 = 0
        var opensOfHot = 0
        for turn in 0..<100 {
            try applier.apply([.append(path: try ReplicatedPath("cold-\(turn)"), offset: 0, bytes: ByteBuffer(string: "x"))])
            #expect(applier.openFileCount <= 8, "turn \(turn): \(applier.openFileCount) open")
            let hotWasOpen = applier.isOpen(hot)
            try applier.apply([.append(path: hot, offset: hotSize, bytes: ByteBuffer(string: "h"))])
            hotSize += 1
            if !hotWasOpen { opensOfHot += 1 }
        }
        #expect(opensOfHot == 1, "the hot file was reopened \(opensOfHot - 1) times")
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/hot")).count == 100)
    }
}
