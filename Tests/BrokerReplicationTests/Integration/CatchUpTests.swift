import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A returning follower's catch-up costs what changed, counted by the leader's own counters
/// (`fullSyncBytes`: file contents sent; `fullSyncWireBytes`: every full-sync frame).
@Suite("Catch-up that costs what changed", .serialized, .heavy)
struct CatchUpTests {
    static let mebibyte = 1 << 20

    /// Writes `count` files of `size` incompressible bytes.
    static func fill(_ leader: ReplicationLeader, files count: Int, size: Int, seed: UInt64) async throws {
        for index in 0..<count {
            try await leader.append(to: "queues/q\(index)/segment", bytes: ByteBuffer(bytes: bytes(size, seed: seed + UInt64(index))))
        }
        leader.flush()
    }

    /// Runs a leader on `cluster`'s leader directory and one follower `name` until the
    /// follower streams and has everything, then `body`, then stops both.
    static func round(
        _ cluster: ReplicationTestCluster.Workspace, follower name: String = "f1",
        configure: (inout ReplicationLeaderConfiguration) -> Void = { _ in },
        beforeFollower: (ReplicationLeader) async throws -> Void = { _ in },
        then body: (ReplicationLeader, ReplicationFollower) async throws -> Void = { _, _ in }
    ) async throws {
        try await withLeader(cluster, configure: configure) { leader, port in
            try await beforeFollower(leader)
            try await withFollower(cluster, name, port: port) { follower in
                let caughtUp = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) {
                    follower.status().phase == .streaming && follower.status().epoch == leader.epoch
                        && follower.status().lastDurableLSN == leader.lastLSN
                }
                #expect(caughtUp, "\(follower.status()) \(leader.status())")
                try await body(leader, follower)
            }
        }
    }

    func expectIdentical(_ cluster: ReplicationTestCluster.Workspace, _ name: String = "f1") throws {
        #expect(try ReplicationTestCluster.files(under: cluster.root + "/" + name) == ReplicationTestCluster.files(under: cluster.root + "/leader"))
    }

    /// A crash leaves no end in the epoch history; removing it has the same effect.
    func forgetHowTheEpochEnded(_ cluster: ReplicationTestCluster.Workspace) throws {
        try FileManager.default.removeItem(atPath: cluster.root + "/leader/" + EpochHistoryFile.rawPath)
    }

    @Test func aLeaderRestartWithNoChangeSendsNoFileContents() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try await Self.round(cluster, beforeFollower: { try await Self.fill($0, files: 4, size: 3 * Self.mebibyte / 2, seed: 1) })
        // A graceful restart: the follower's position is where the new epoch starts.
        try await Self.round(cluster, then: { leader, follower in
            let status = leader.status()
            #expect(status.epochResumes == 1 && status.fullSyncs == 0 && status.fullSyncWireBytes == 0, "\(status)")
            #expect(follower.status().resumes == 1)
        })
        // A crash: the history cannot vouch, so a full sync runs, and only manifests cross.
        try forgetHowTheEpochEnded(cluster)
        try await Self.round(cluster, then: { leader, _ in
            let status = leader.status()
            #expect(status.fullSyncs == 1 && status.fullSyncBytes == 0, "\(status)")
            #expect(status.fullSyncWireBytes < 4096, "begin, manifest and end only: \(status.fullSyncWireBytes) bytes")
        })
        try expectIdentical(cluster)
    }

    @Test func aLeaderRestartWithAppendsSendsOnlyTheAppendedBytes() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try await Self.round(cluster, beforeFollower: { try await Self.fill($0, files: 4, size: 2 * Self.mebibyte + 1000, seed: 10) })
        try forgetHowTheEpochEnded(cluster)
        let appended = 4 * 300_000
        try await Self.round(cluster, beforeFollower: { leader in
            try await Self.fill(leader, files: 4, size: 300_000, seed: 20)
        }, then: { leader, _ in
            let status = leader.status()
            #expect(status.fullSyncs == 1 && status.fullSyncBytes == appended, "\(status)")
        })
        try expectIdentical(cluster)
    }

    @Test func aFollowersUnconfirmedTailIsTruncatedAndReplacedAndDeletedFilesFollow() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        try await Self.round(cluster, beforeFollower: { try await Self.fill($0, files: 3, size: 3 * Self.mebibyte / 2, seed: 30) })
        // The follower holds writes the leader never had (a former leader's unconfirmed tail).
        let extra = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.root + "/f1/queues/q0/segment"))
        try extra.seekToEnd()
        try extra.write(contentsOf: bytes(400_000, seed: 31))
        try extra.close()
        try forgetHowTheEpochEnded(cluster)
        let replaced = bytes(500_000, seed: 32)
        try await Self.round(cluster, beforeFollower: { leader in
            _ = try await leader.replace("queues/q1/segment", contents: ByteBuffer(bytes: replaced))
            _ = try await leader.delete("queues/q2/segment")
            leader.flush()
        }, then: { leader, _ in
            let status = leader.status()
            #expect(status.fullSyncs == 1, "\(status)")
            #expect(status.fullSyncBytes == replaced.count, "the replaced file whole, the truncation and the delete for free: \(status.fullSyncBytes)")
        })
        try expectIdentical(cluster)
    }

    @Test func aRateLimitedCatchUpTakesItsTimeWhileAnotherFollowerStreams() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        let rate = 2_000_000
        let size = 4 * Self.mebibyte
        try await Self.round(cluster, configure: { $0.catchUpBytesPerSecond = rate }, beforeFollower: {
            try await Self.fill($0, files: 4, size: size / 4, seed: 40)
        }, then: { leader, _ in
            // f1 streams; f2 joins empty and needs every byte.
            let port = try await leader.listeningPort()
            let before = leader.status()
            let started = ContinuousClock.now
            try await withFollower(cluster, "f2", port: port) { f2 in
                var liveWrites = 0
                var f1AckedDuringSync = false
                // Until f2 has installed the sync, a small write every 50 ms that f1 must ack.
                while f2.status().phase != .streaming || f2.status().epoch != leader.epoch, ContinuousClock.now - started < .seconds(120) {
                    let lsn = try await leader.append(to: "live/stream", bytes: ByteBuffer(string: "live \(liveWrites)\n"))
                    liveWrites += 1
                    leader.flush()
                    try await Task.sleep(for: .milliseconds(50))
                    let f1Acked = leader.status().followers.first { $0.nodeID == "f1" }?.ackedLSN ?? 0
                    if f2.status().phase == .syncing, f1Acked >= lsn { f1AckedDuringSync = true }
                }
                let elapsed = ContinuousClock.now - started
                let status = leader.status()
                let wireBytes = status.fullSyncWireBytes - before.fullSyncWireBytes
                // The cut may hold the first live writes too.
                #expect((size..<size + 1000).contains(status.fullSyncBytes - before.fullSyncBytes), "\(status)")
                // The bucket starts with a tenth of a second's worth; the rest goes at the rate.
                let floor = Duration.seconds(Double(wireBytes - rate / 10) / Double(rate))
                #expect(elapsed >= floor, "\(wireBytes) bytes at \(rate) B/s took \(elapsed), below \(floor)")
                #expect(f1AckedDuringSync, "f1 kept streaming and acking while f2 synced")
                let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) {
                    f2.status().lastDurableLSN == leader.lastLSN
                }
                #expect(converged, "\(f2.status()) \(leader.status())")
            }
        })
        try expectIdentical(cluster, "f2")
    }
}
