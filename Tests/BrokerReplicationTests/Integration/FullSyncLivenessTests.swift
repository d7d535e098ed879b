import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A full sync that takes far longer than `heartbeatTimeout` completes, because liveness during
/// a sync rests on progress in both directions, not on heartbeats (Docs/Semantics.md, "Liveness").
@Suite("Full-sync liveness", .serialized, .heavy)
struct FullSyncLivenessTests {
    /// 320 MiB, incompressible, with a 1 s heartbeat timeout: once received (the leader's chunk
    /// writes and the follower's reports move), once checked (the follower checksums its own
    /// copy after losing its position).
    @Test func aFullSyncLongerThanTheHeartbeatTimeoutFinishesWithoutEvictions() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        var configuration = cluster.leaderConfiguration()
        configuration.heartbeatInterval = .milliseconds(200)
        configuration.heartbeatTimeout = .seconds(1)
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        var random = SystemRandomNumberGenerator()
        let words = (0..<(1 << 17)).map { _ in random.next() as UInt64 }
        let block = words.withUnsafeBytes { ByteBuffer(bytes: $0) }
        for index in 0..<320 { try await leader.append(to: "segments/\(index % 16)", bytes: block) }
        let serving = Task { try await leader.run() }
        let port = try await leader.listeningPort()

        func follow() throws -> (ReplicationFollower, Task<Void, any Error>) {
            var followerConfiguration = cluster.followerConfiguration("f1", port: port)
            followerConfiguration.leaderSilenceTimeout = .seconds(1)
            let follower = try ReplicationFollower(configuration: followerConfiguration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
            return (follower, Task { try await follower.run() })
        }
        var (follower, following) = try follow()
        #expect(try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(240)) { follower.status().lastDurableLSN == leader.lastLSN })
        #expect(leader.status().evictions.isEmpty, "\(leader.status().recentEvictions)")
        #expect(follower.status().fullSyncs == 1 && follower.status().connects == 1)

        // Without its position the follower checks all 320 MiB of its own before requesting.
        following.cancel()
        _ = await following.result
        try FileManager.default.removeItem(atPath: cluster.root + "/f1/" + FollowerStateFile.rawPath)
        (follower, following) = try follow()
        #expect(try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(240)) { follower.status().lastDurableLSN == leader.lastLSN })
        #expect(leader.status().evictions.isEmpty, "\(leader.status().recentEvictions)")
        #expect(follower.status().fullSyncs == 1 && follower.status().connects == 1)
        #expect(leader.status().fullSyncs == 2)

        following.cancel()
        serving.cancel()
        _ = await (following.result, serving.result)
    }
}
