import HeavyTestGate
import BrokerReplication
import BrokerReplicationTesting
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// Graceful shutdown through swift-service-lifecycle: no acked record is lost, and nothing
/// hangs beyond its bound.
@Suite("Graceful shutdown", .serialized, .heavy)
struct ShutdownTests {
    static func write(_ leader: ReplicationLeader, records: Int) async throws -> UInt64 {
        var lsn: UInt64 = 0
        for index in 0..<records {
            lsn = try await leader.append(to: "segments/\(index % 4)", bytes: ByteBuffer(string: "record \(index) \(String(repeating: "z", count: index % 50))"))
            if index % 64 == 63 { await Task.yield() }
        }
        return lsn
    }

    /// The leader, stopped gracefully right after a burst of writes, waits for its follower to
    /// ack all of them before it closes.
    @Test func aLeaderWaitsForItsFollowersToAckEverythingBeforeClosing() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        var configuration = cluster.leaderConfiguration()
        configuration.shutdownTimeout = .seconds(60)
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let serving = Task { try await leader.run() }
        let port = try await leader.listeningPort()
        try await withFollower(cluster, "f1", port: port) { follower in
            let joined = try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["f1"] }
            #expect(joined)
            let last = try await Self.write(leader, records: 20_000)
            leader.shutdownGracefully()
            try await serving.value
            // No waiting here: the leader returned only once f1 had acked the last LSN.
            #expect(follower.status().lastDurableLSN == last)
        }
    }

    /// A black-holed follower cannot hold a graceful shutdown beyond `shutdownTimeout`.
    @Test func aSilentFollowerCannotHoldTheLeaderPastItsShutdownTimeout() async throws {
        try await ReplicationTestCluster.run(followers: ["silent"], configureLeader: {
            $0.shutdownTimeout = .seconds(1)
            $0.ackTimeout = .seconds(600)
            $0.heartbeatTimeout = .seconds(600)
        }) { cluster in
            let leader = cluster.leader
            try await cluster.waitUntil("the follower streams") { leader.status().isr == ["silent"] }
            cluster.proxy("silent").set(.init(blackHole: true))
            _ = try await Self.write(leader, records: 1_000)
            let start = ContinuousClock.now
            leader.shutdownGracefully()
            try await cluster.waitUntil("the leader closed the connection", timeout: .seconds(60)) {
                leader.status().followers.isEmpty || cluster.proxy("silent").statistics.open == 0
            }
            let took = ContinuousClock.now - start
            #expect(took >= .seconds(1), "it waited its shutdownTimeout first (\(took))")
        }
    }

    /// A follower stopped gracefully under load acks everything it made durable before it
    /// closes, and resumes from there later.
    @Test func aFollowerAcksWhatItMadeDurableBeforeClosing() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            let follower = try ReplicationFollower(configuration: cluster.followerConfiguration("f1", port: port), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
            let following = Task { try await follower.run() }
            let joined = try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["f1"] }
            #expect(joined)
            let producing = Task { try await Self.write(leader, records: 30_000) }
            let moving = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN > 5_000 }
            #expect(moving)
            let durableBefore = follower.status().lastDurableLSN
            follower.shutdownGracefully()
            try await following.value
            let status = follower.status()
            // Everything durable when the shutdown began is acked, and so is the batch being
            // applied at that moment: nothing ends durable but unacked.
            #expect(status.lastAckedLSN >= durableBefore, "durable before \(durableBefore), acked \(status.lastAckedLSN)")
            #expect(status.lastAckedLSN == status.lastDurableLSN, "durable through \(status.lastDurableLSN), acked through \(status.lastAckedLSN)")
            let last = try await producing.value
            // Restarted, it resumes from its durable LSN and converges.
            try await withFollower(cluster, "f1", port: port) { again in
                let caughtUp = try await ReplicationTestCluster.Workspace.eventually { again.status().lastDurableLSN == last }
                #expect(caughtUp)
                #expect(again.status().resumes == 1 && again.status().fullSyncs == 0)
            }
        }
    }

    /// In a ServiceGroup, a graceful shutdown stops a leader and a follower, in order, with
    /// the follower holding everything the leader wrote.
    @Test func aServiceGroupShutsDownLeaderAndFollowerGracefully() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        var configuration = cluster.leaderConfiguration()
        configuration.shutdownTimeout = .seconds(60)
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let leaderGroup = ServiceGroup(services: [leader], logger: ReplicationTestCluster.Workspace.logger)
        let leaderRunning = Task { try await leaderGroup.run() }
        let port = try await leader.listeningPort()
        let follower = try ReplicationFollower(configuration: cluster.followerConfiguration("f1", port: port), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let followerGroup = ServiceGroup(services: [follower], logger: ReplicationTestCluster.Workspace.logger)
        let followerRunning = Task { try await followerGroup.run() }
        let joined = try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["f1"] }
        #expect(joined)
        let last = try await Self.write(leader, records: 5_000)
        await leaderGroup.triggerGracefulShutdown()
        try await leaderRunning.value
        #expect(follower.status().lastDurableLSN == last)
        await followerGroup.triggerGracefulShutdown()
        try await followerRunning.value
        #expect(follower.status().lastAckedLSN == last)
    }
}
