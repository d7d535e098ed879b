import BrokerReplication
import BrokerReplicationTesting
import Foundation
import Testing

@testable import BrokerReplicationEtcd

/// A node names every etcd member and moves to the next when one stops answering.
@Suite("etcd members", .serialized)
struct EtcdMembersTests {
    @Test func aMemberThatRefusesIsSkippedWithinTheSameRequest() async throws {
        try await withEtcd { etcd in
            let closed = try EtcdTestServer.unusedLoopbackPort()
            let url = "etcd://127.0.0.1:\(closed),\(etcd.endpoint)\(uniquePrefix("skip"))"
            let election = try EtcdElection(endpoint: EtcdEndpoint(url: url), nodeID: "a", logger: ReplicationTestCluster.Workspace.logger)
            #expect(try await election.campaign(record("a")))
            let claimed = try await election.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            #expect(claimed.leader == "a")
            #expect(election.client.currentMember.description == etcd.endpoint)
            try await election.resign()
        }
    }

    @Test func whenNoMemberAnswersTheErrorNamesEachOne() async throws {
        let ports = try [EtcdTestServer.unusedLoopbackPort(), EtcdTestServer.unusedLoopbackPort()]
        let election = try EtcdElection(
            endpoint: EtcdEndpoint(url: "etcd://127.0.0.1:\(ports[0]),127.0.0.1:\(ports[1])/none"), nodeID: "a",
            logger: ReplicationTestCluster.Workspace.logger)
        let error = await replicationError { _ = try await election.coordinator.load() }
        #expect(error?.code == .coordination)
        #expect(error?.message.contains("no etcd member answered") == true, "\(error?.message ?? "")")
        for port in ports { #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(error?.message ?? "")") }
    }

    /// A leader whose etcd member freezes renews its lease through another member and keeps
    /// leading; its fenced writes go through too.
    @Test func aLeaderKeepsItsLeaseWhenItsEtcdMemberFreezes() async throws {
        let members = try await EtcdTestServer.startCluster(members: 3)
        defer { for member in members { member.stop() } }
        let clustered = try EtcdElection(
            endpoint: EtcdEndpoint(url: EtcdTestServer.url(of: members, prefix: uniquePrefix("member"))), nodeID: "a",
            leaseTTL: .seconds(6), requestTimeout: .seconds(1), logger: ReplicationTestCluster.Workspace.logger)
        try await whileRunning(clustered) {
            #expect(try await clustered.campaign(record("a")))
            _ = try await clustered.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            let frozen = try #require(members.first { $0.endpoint == clustered.client.currentMember.description })
            frozen.pause()
            defer { frozen.resume() }
            // Two lease lengths with the member frozen: the leadership must hold throughout.
            let until = ContinuousClock.now + .seconds(12)
            while ContinuousClock.now < until {
                let deadline = clustered.leadershipDeadline()
                #expect(deadline.map { $0 > .now } == true, "the leadership lapsed with one of three etcd members frozen")
                if deadline == nil { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await clustered.coordinator.storeInSyncReplicas(["b"], epoch: 1)
            #expect(try await clustered.coordinator.load().inSyncReplicas == ["b"])
            #expect(clustered.client.currentMember.description != frozen.endpoint)
        }
    }
}
