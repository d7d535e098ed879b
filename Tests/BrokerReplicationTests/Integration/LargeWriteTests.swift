import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A write above `chunkBytes` is all or nothing for the broker: admitted once, before anything
/// is written, so no later chunk can be refused after earlier ones were replicated.
@Suite("Large writes are all or nothing", .serialized, .heavy)
struct LargeWriteTests {
    /// min-ISR(1), and the only follower stops reading right after it joined: the producer
    /// timeout expires while the write is between chunks. The write must be whole or absent.
    @Test func aProducerTimeoutBetweenChunksDoesNotTearAWrite() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"], configureLeader: { configuration in
            configuration.policy = .minInSyncReplicas(1)
            configuration.chunkBytes = 64 * 1024
            configuration.queueBytes = 512 * 1024
            configuration.backlogBytes = 4 << 20
            configuration.producerTimeout = .milliseconds(500)
            configuration.maxLagTime = .milliseconds(400)
            configuration.ackTimeout = .seconds(3)
        }) { cluster in
            let leader = cluster.leader
            try await cluster.waitUntil("f1 in sync", timeout: .seconds(60)) { leader.status().isr == ["f1"] }
            let seeded = try await leader.append(to: "seed", bytes: ByteBuffer(string: "x"))
            try await leader.waitForReplication(upTo: seeded)
            cluster.proxy("f1").set(.init(blackHole: true))

            var random = SystemRandomNumberGenerator()
            let words = (0..<(1 << 17)).map { _ in random.next() as UInt64 }
            let message = words.withUnsafeBytes { ByteBuffer(bytes: $0) }  // 1 MiB: 16 chunks
            let before = leader.lastLSN
            let file = cluster.dataDirectory("leader") + "/big"
            do {
                let lsn = try await leader.append(to: "big", bytes: message)
                #expect(lsn == before + 16)
                #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == Data(message.readableBytesView))
            } catch let error as ReplicationError where error.isNotEnoughReplicas {
                let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
                #expect(leader.lastLSN == before, "a refused write replicated \(leader.lastLSN - before) chunks: \(error)")
                #expect(size == 0, "a refused write left \(size) bytes")
            }
        }
    }
}
