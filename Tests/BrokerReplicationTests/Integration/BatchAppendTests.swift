import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// `append(to:contentsOf:)`: one writer lock, one `pwritev` and one LSN range per run of records.
@Suite("Batch append", .serialized, .heavy)
struct BatchAppendTests {
    /// `count` records of 1...300 bytes whose contents depend on `seed` and their index.
    static func records(_ count: Int, seed: UInt64) -> [ByteBuffer] {
        var random = SplitMix(seed: seed)
        return (0..<count).map { index in
            let size = Int(random.next() % 300) + 1
            return ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index &+ Int(truncatingIfNeeded: seed)) })
        }
    }

    static func concatenation(_ records: [ByteBuffer]) -> Data {
        Data(records.flatMap { Array($0.readableBytesView) })
    }

    static func leaderFile(_ cluster: ReplicationTestCluster.Workspace, _ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/leader/" + path))
    }

    @Test func aBatchStreamsToAFollowerByteForByte() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            try await withFollower(cluster, "f1", port: port) { follower in
                // Streamed as records, not copied by the follower's first full sync.
                #expect(try await ReplicationTestCluster.Workspace.eventually { follower.status().phase == .streaming })
                let fullSyncs = follower.status().fullSyncs
                let records = Self.records(2_000, seed: 1)
                let last = try await leader.append(to: "queues/orders/segment.1", contentsOf: records)
                #expect(last == leader.lastLSN)
                leader.flush()
                #expect(try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last })
                #expect(follower.status().fullSyncs == fullSyncs)
                let expected = Self.concatenation(records)
                #expect(try Self.leaderFile(cluster, "queues/orders/segment.1") == expected)
                #expect(try ReplicationTestCluster.files(under: cluster.root + "/f1") == ["queues/orders/segment.1": expected])
            }
        }
    }

    @Test func theReturnedLSNIsTheLastOfAContiguousRange() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try ReplicationLeader(configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        try await leader.append(to: "a", bytes: [1, 2, 3])
        let before = leader.lastLSN
        let last = try await leader.append(to: "b", contentsOf: Self.records(10, seed: 2))
        #expect(last == before + 10)
        #expect(try await leader.append(to: "a", bytes: [4]) == last + 1)
        let byteArrays: [[UInt8]] = [[5], [6, 7], []]
        #expect(try await leader.append(to: "a", contentsOf: byteArrays) == last + 4, "an empty record still takes its LSN")
        #expect(try Self.leaderFile(cluster, "a") == Data([1, 2, 3, 4, 5, 6, 7]))
    }

    @Test func anEmptyBatchWritesNothingAndReturnsTheLastLSN() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try ReplicationLeader(configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        try await leader.append(to: "a", bytes: [1])
        #expect(try await leader.append(to: "b", contentsOf: [ByteBuffer]()) == leader.lastLSN)
        #expect(leader.lastLSN == 1)
        #expect(!FileManager.default.fileExists(atPath: cluster.root + "/leader/b"))
        let error = await #expect(throws: ReplicationError.self) { try await leader.append(to: "../b", contentsOf: [ByteBuffer]()) }
        #expect(error?.code == .invalidPath)
    }

    /// Runs of at most `chunkBytes`, and a record above it through the single path, still land
    /// in order with one LSN per record or chunk.
    @Test func aBatchAboveChunkBytesLandsInOrder() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        var configuration = cluster.leaderConfiguration()
        configuration.chunkBytes = 4096
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        var records = Self.records(100, seed: 3)
        records.insert(ByteBuffer(bytes: (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }), at: 40)
        let last = try await leader.append(to: "big", contentsOf: records)
        // 100 small records, and three chunks of the 10,000-byte one.
        #expect(last == 103)
        #expect(try Self.leaderFile(cluster, "big") == Self.concatenation(records))
        #expect(leader.core.replicatedSize(of: try ReplicatedPath("big")) == Self.concatenation(records).count)
    }

    /// Batches and single appends from several tasks, to files they share, with small chunks so
    /// that runs split and large records take the single path.
    @Test func interleavedBatchAndSingleAppendsConverge() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { $0.chunkBytes = 4096 }) { leader, port in
            try await withFollower(cluster, "f1", port: port) { first in
                try await withFollower(cluster, "f2", port: port) { second in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for producer in 0..<4 {
                            group.addTask {
                                var random = SplitMix(seed: 100 + UInt64(producer))
                                for round in 0..<150 {
                                    let file = "shared/f\(random.next() % 6)"
                                    if random.next() % 2 == 0 {
                                        var batch = Self.records(Int(random.next() % 16) + 1, seed: random.next())
                                        if round % 25 == 0 { batch.append(ByteBuffer(repeating: UInt8(producer), count: 5_000)) }
                                        try await leader.append(to: file, contentsOf: batch)
                                    } else {
                                        try await leader.append(to: file, bytes: Array("p\(producer) r\(round);".utf8))
                                    }
                                    if round % 16 == 15 { await Task.yield() }
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    leader.flush()
                    let last = leader.lastLSN
                    let converged = try await ReplicationTestCluster.Workspace.eventually {
                        first.status().lastDurableLSN == last && second.status().lastDurableLSN == last
                    }
                    #expect(converged, "followers \(first.status()), \(second.status())")
                    let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
                    #expect(expected.count == 6)
                    for name in ["f1", "f2"] {
                        #expect(try ReplicationTestCluster.files(under: cluster.root + "/" + name) == expected, "\(name) differs from the leader")
                    }
                }
            }
        }
    }

    /// The state machine alone: one range of LSNs, sealed part-way when the batch fills.
    @Test func commitOfARangeSealsPartWayAndKeepsTheLSNsContiguous() throws {
        let settings = LeaderCore.Settings(epoch: 1, batchBytes: 1024, queueBytes: 1 << 20, queueFrames: 1024, backlogBytes: 1 << 20)
        let core = LeaderCore(settings: settings, files: []) { _, _, _ in }
        let path = try ReplicatedPath("a")
        _ = core.commit(.append(path: path, offset: 0, bytes: ByteBuffer(bytes: [0])), change: .grew(toSize: 1))
        let records = Self.records(100, seed: 4)
        let last = core.commit(appends: records[...], to: path, startingAt: 1)
        #expect(last == 101)
        #expect(core.lastAssignedLSN == 101)
        #expect(core.replicatedSize(of: path) == 1 + Self.concatenation(records).count)
        #expect(core.counters.sealedBatches > 5, "about 15 KB of records in 1 KiB batches")
        core.sealOpenBatch()
        #expect(core.backlogRange.first == 1)
        #expect(core.backlogRange.last == 101)
    }
}
