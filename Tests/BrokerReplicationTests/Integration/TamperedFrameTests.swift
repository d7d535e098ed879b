import BrokerReplication
import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import Testing

/// A byte changed on the path of a link without TLS (the fault proxy's corrupt-byte fault),
/// placed inside a known frame: the frame fails authentication, nothing in it is used, and the
/// follower resumes from its last durable record and converges.
///
/// The leader and the follower are kept quiet (heartbeats every 20 s) so that the frame after
/// the fault is armed is the one the test sends, and the changed byte lands in its body.
@Suite("Tampered frames", .serialized, .heavy)
struct TamperedFrameTests {
    static func quietLeader(_ configuration: inout ReplicationLeaderConfiguration) {
        configuration.heartbeatInterval = .seconds(20)
        configuration.heartbeatTimeout = .seconds(60)
        configuration.ackTimeout = .seconds(30)
    }

    @Sendable static func quietFollower(_ configuration: inout ReplicationFollowerConfiguration) {
        configuration.leaderSilenceTimeout = .seconds(60)
    }

    /// Bytes LZ4 cannot shrink, so the data frame is longer than the offset of the changed byte.
    static func incompressible(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Writes one record and waits until the follower has it durable and the leader has its ack,
    /// so that nothing is in flight afterwards.
    static func settle(_ cluster: ReplicationTestCluster, bytes: [UInt8]) async throws {
        let leader = cluster.leader
        try await leader.append(to: "queues/q1/segment.1", bytes: bytes)
        leader.flush()
        let last = leader.lastLSN
        try await cluster.waitUntil("the follower acked LSN \(last)") {
            leader.status().followers.contains { $0.nodeID == "f1" && $0.ackedLSN == last }
        }
    }

    @Test func aRecordChangedOnTheWayFailsAuthenticationAndIsNeverApplied() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"], configureLeader: Self.quietLeader, configureFollower: Self.quietFollower) { cluster in
            let leader = cluster.leader
            try await Self.settle(cluster, bytes: Array("first record\n".utf8))
            let connectsBefore = try #require(cluster.follower("f1")).status().connects
            // Header 9 bytes, then the batch: byte 200 is deep in the compressed records.
            #expect(await cluster.proxy("f1").corruptByte(at: 200, in: .serverToClient) == 1)
            try await leader.append(to: "queues/q1/segment.1", bytes: Self.incompressible(4_000))
            leader.flush()
            try await cluster.waitUntil("the follower saw the frame fail") {
                cluster.follower("f1")?.status().lastError?.contains("failed authentication") == true
            }
            let lastError = cluster.follower("f1")?.status().lastError ?? ""
            #expect(lastError.contains("data frame") && lastError.contains("failed authentication"), "\(lastError)")
            try await cluster.waitForConvergence()
            let status = try #require(cluster.follower("f1")).status()
            #expect(status.connects == connectsBefore + 1, "it reconnected once")
            #expect(status.resumes == 1, "it resumed from its durable LSN")
            #expect(status.fullSyncs == 1, "only its first connection synced (a fresh follower)")
            // Had the changed record been applied and acked, the resume would have started after
            // it and its bytes would still differ from the leader's; waitForConvergence compares
            // every file byte for byte.
            #expect(try cluster.differingFiles("f1").isEmpty)
        }
    }

    @Test func anAckChangedOnTheWayFailsAuthenticationAndIsNeverRead() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"], configureLeader: Self.quietLeader, configureFollower: Self.quietFollower) { cluster in
            let leader = cluster.leader
            try await Self.settle(cluster, bytes: Array("first record\n".utf8))
            // An ack is a 9-byte header, an 8-byte LSN and a 16-byte tag: byte 12 is in the LSN.
            #expect(await cluster.proxy("f1").corruptByte(at: 12, in: .clientToServer) == 1)
            try await leader.append(to: "queues/q1/segment.1", bytes: Array("second record\n".utf8))
            leader.flush()
            try await cluster.waitUntil("the leader evicted the follower") { leader.status().evictions[.authentication] == 1 }
            let eviction = try #require(leader.status().recentEvictions.first { $0.nodeID == "f1" })
            #expect(eviction.reason == .authentication)
            #expect(eviction.detail.contains("ack frame"), "\(eviction.detail)")
            #expect(eviction.detail.contains("failed authentication"), "\(eviction.detail)")
            // The changed byte adds 2^32 to the acked LSN: had the ack been read, the leader would
            // have refused it as beyond what it sent (a decode error), not failed its tag.
            try await cluster.waitForConvergence()
            #expect(leader.status().evictions[.decodeError] == nil)
        }
    }
}
