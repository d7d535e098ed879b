import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication
@testable import BrokerReplicationEtcd

/// `ClusterNode`s in this process with a real etcd, for what a process test cannot cause: a
/// leader's disk that hangs. Heavy: the hung write blocks one of the cooperative threads.
@Suite("Cluster nodes on etcd", .serialized, .heavy)
struct ClusterNodeTests {
    func node(_ cluster: ReplicationTestCluster.Workspace, _ name: String, etcd: EtcdTestServer, prefix: String) throws -> ClusterNode {
        var leader = cluster.leaderConfiguration(name)
        leader.port = try EtcdTestServer.unusedLoopbackPort()
        var configuration = ClusterNodeConfiguration(leader: leader, follower: cluster.followerConfiguration(name, port: leader.port))
        configuration.writeStallLimit = .seconds(1)
        // A lease with slack, so that only the stall can end the leadership on a loaded machine.
        let election = try makeElection(etcd, prefix: prefix, nodeID: name, leaseTTL: .seconds(5))
        return try ClusterNode(configuration: configuration, election: election, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
    }

    /// A leader whose local write hangs longer than `writeStallLimit` steps down and resigns
    /// (a LavinMQ leader with a stalled disk kept its lease), and the in-sync follower leads.
    @Test func aLeaderWhoseDiskStallsResignsAndTheInSyncFollowerTakesOver() async throws {
        try await withEtcd { etcd in
            let cluster = try ReplicationTestCluster.Workspace()
            let prefix = uniquePrefix("stall")
            let a = try node(cluster, "a", etcd: etcd, prefix: prefix)
            let b = try node(cluster, "b", etcd: etcd, prefix: prefix)
            try await withThrowingTaskGroup(of: Void.self) { group in
                defer { group.cancelAll() }
                group.addTask { try await a.run() }
                #expect(try await eventually(within: .seconds(20)) { a.leader != nil })
                group.addTask { try await b.run() }
                let leader = try #require(a.leader)
                #expect(try await eventually(within: .seconds(30)) { leader.status().isr == ["b"] })
                let lsn = try await leader.append(to: "segment", bytes: Array("confirmed".utf8))
                try await leader.waitForReplication(upTo: lsn)

                leader.directory.injectedFaults.stallNextWrite(milliseconds: 4_000)
                let stalled = Task { try await leader.append(to: "segment", bytes: Array("stalled".utf8)) }
                #expect(try await eventually(within: .seconds(15)) { b.status().role == .leader })
                #expect(leader.status().steppedDown?.contains("a local write has stalled") == true, "\(String(describing: leader.status().steppedDown))")
                let refused = await replicationError { try await leader.waitForReplication(upTo: lsn) }
                #expect(refused?.isNotLeader == true)
                _ = await stalled.result
                #expect(try await eventually(within: .seconds(30)) { a.status().role == .follower && a.status().leader == "b" })
                let state = try await b.election.coordinator.load()
                #expect(state.leader == "b" && state.epoch == leader.epoch + 1)
            }
        }
    }
}
