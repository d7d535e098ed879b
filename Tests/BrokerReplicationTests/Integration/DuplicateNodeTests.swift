import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Two followers configured with one node id: the live one keeps its place and the newcomer
/// is refused, instead of the two replacing each other forever.
@Suite("Duplicate node ids", .serialized, .heavy)
struct DuplicateNodeTests {
    func twin(_ cluster: ReplicationTestCluster.Workspace, directory: String, port: Int) throws -> ReplicationFollower {
        var configuration = cluster.followerConfiguration("twin", port: port)
        configuration.dataDirectory = cluster.root + "/" + directory
        return try ReplicationFollower(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
    }

    func leader(_ cluster: ReplicationTestCluster.Workspace) throws -> ReplicationLeader {
        var configuration = cluster.leaderConfiguration()
        configuration.heartbeatInterval = .milliseconds(200)
        configuration.heartbeatTimeout = .seconds(2)
        return try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
    }

    @Test func aSecondFollowerWithALiveNodesIDIsRefusedAndTheFirstKeepsStreaming() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try leader(cluster)
        let serving = Task { try await leader.run() }
        let port = try await leader.listeningPort()
        let first = try twin(cluster, directory: "first", port: port)
        let firstFollowing = Task { try await first.run() }
        #expect(try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["twin"] })

        let second = try twin(cluster, directory: "second", port: port)
        let secondFollowing = Task { try await second.run() }
        // Five seconds of writes while the second one keeps trying.
        let until = ContinuousClock.now + .seconds(5)
        var index = 0
        while ContinuousClock.now < until {
            try await leader.append(to: "log", bytes: ByteBuffer(string: "record \(index)\n"))
            index += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        leader.flush()
        #expect(try await ReplicationTestCluster.Workspace.eventually { first.status().lastDurableLSN == leader.lastLSN })
        #expect(leader.status().evictions.isEmpty, "\(leader.status().recentEvictions)")
        #expect(first.status().connects == 1)
        #expect(second.status().lastError?.contains("duplicate-node") == true, "\(String(describing: second.status().lastError))")
        #expect(second.status().lastDurableLSN == 0)

        secondFollowing.cancel()
        firstFollowing.cancel()
        serving.cancel()
        _ = await (secondFollowing.result, firstFollowing.result, serving.result)
    }

    /// A follower restarted elsewhere while its old connection hangs (black-holed, not closed)
    /// gets in once the old session is dead.
    @Test func aRestartedFollowerGetsInOnceItsOldSessionIsDead() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try leader(cluster)
        let serving = Task { try await leader.run() }
        let port = try await leader.listeningPort()
        let proxy = FaultInjectingProxy(upstreamPort: port)
        let proxyPort = try await proxy.start()
        let old = try twin(cluster, directory: "old", port: proxyPort)
        let oldFollowing = Task { try await old.run() }
        for index in 0..<50 { try await leader.append(to: "log", bytes: ByteBuffer(string: "record \(index)\n")) }
        leader.flush()
        #expect(try await ReplicationTestCluster.Workspace.eventually { old.status().lastDurableLSN == leader.lastLSN })

        proxy.set(.init(blackHole: true))
        let restarted = try twin(cluster, directory: "restarted", port: port)
        let restartedFollowing = Task { try await restarted.run() }
        #expect(try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(30)) { restarted.status().lastDurableLSN == leader.lastLSN })
        #expect(leader.status().evictions[.heartbeatTimeout, default: 0] + leader.status().evictions[.replaced, default: 0] >= 1)

        restartedFollowing.cancel()
        oldFollowing.cancel()
        serving.cancel()
        _ = await (restartedFollowing.result, oldFollowing.result, serving.result)
        await proxy.stop()
    }
}
