import BrokerReplication
import BrokerReplicationTesting
import Testing

@testable import BrokerReplicationEtcd

@Suite("EtcdCoordinator", .serialized)
struct EtcdCoordinatorTests {
    @Test("load() of an empty etcd is epoch 0 with an empty in-sync set")
    func loadEmpty() async throws {
        try await withEtcd { etcd in
            let a = try makeElection(etcd, prefix: uniquePrefix("empty"), nodeID: "a")
            #expect(try await a.coordinator.load() == CoordinatorState(epoch: 0, inSyncReplicas: []))
            #expect(try await a.leader() == nil)
        }
    }

    @Test("after a campaign, claimEpoch stores epoch, leader and an empty set; the same claim again changes nothing")
    func claim() async throws {
        try await withEtcd { etcd in
            let prefix = uniquePrefix("claim")
            let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
            #expect(try await a.campaign(record("a")))
            let claim = EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch)
            let expected = CoordinatorState(epoch: 1, inSyncReplicas: [], leader: "a")
            #expect(try await a.coordinator.claimEpoch(claim) == expected)
            #expect(try await a.coordinator.load() == expected)
            let revision = try #require(try await a.client.get(a.stateKey)).modRevision

            #expect(try await a.coordinator.claimEpoch(claim) == expected)
            #expect(try #require(try await a.client.get(a.stateKey)).modRevision == revision, "an idempotent claim writes nothing")

            // Another election on the same prefix reads the same state without campaigning.
            let reader = try makeElection(etcd, prefix: prefix, nodeID: "reader")
            #expect(try await reader.coordinator.load() == expected)
        }
    }

    @Test("a node that never won is refused locally: campaign first")
    func neverWon() async throws {
        try await withEtcd { etcd in
            let prefix = uniquePrefix("never")
            let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
            #expect(try await a.campaign(record("a")))
            let b = try makeElection(etcd, prefix: prefix, nodeID: "b")
            #expect(try await b.campaign(record("b")) == false)
            let error = await replicationError {
                _ = try await b.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "b", requirement: .newerEpoch))
            }
            #expect(error?.code == .coordination)
            #expect(error?.message.contains("campaign first") == true)
            #expect(try await b.coordinator.load() == CoordinatorState(epoch: 0, inSyncReplicas: []))
        }
    }

    @Test("storeInSyncReplicas round-trips sorted; a wrong epoch is refused")
    func inSyncReplicas() async throws {
        try await withEtcd { etcd in
            let a = try makeElection(etcd, prefix: uniquePrefix("isr"), nodeID: "a")
            #expect(try await a.campaign(record("a")))
            _ = try await a.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            try await a.coordinator.storeInSyncReplicas(["c", "b"], epoch: 1)
            #expect(try await a.coordinator.load() == CoordinatorState(epoch: 1, inSyncReplicas: ["b", "c"], leader: "a"))
            try await a.coordinator.storeInSyncReplicas([], epoch: 1)
            #expect(try await a.coordinator.load().inSyncReplicas == [])

            let error = await replicationError { try await a.coordinator.storeInSyncReplicas(["b"], epoch: 2) }
            #expect(error?.code == .coordination)
            #expect(error?.message.contains("epoch 1 is current") == true)
            #expect(try await a.coordinator.load() == CoordinatorState(epoch: 1, inSyncReplicas: [], leader: "a"))
        }
    }

    @Test("an in-sync claim by a node outside the stored set is refused; one inside it succeeds")
    func inSyncClaim() async throws {
        try await withEtcd { etcd in
            let prefix = uniquePrefix("promote")
            let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
            #expect(try await a.campaign(record("a")))
            _ = try await a.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            try await a.coordinator.storeInSyncReplicas(["b"], epoch: 1)
            try await a.resign()

            let c = try makeElection(etcd, prefix: prefix, nodeID: "c")
            #expect(try await c.campaign(record("c")))
            let error = await replicationError {
                _ = try await c.coordinator.claimEpoch(EpochClaim(epoch: 2, nodeID: "c", requirement: .inSync(dataEpoch: 1)))
            }
            #expect(error?.code == .promotionRefused)
            #expect(error?.message.contains("\"c\"") == true)
            try await c.resign()

            let b = try makeElection(etcd, prefix: prefix, nodeID: "b")
            #expect(try await b.campaign(record("b")))
            let state = try await b.coordinator.claimEpoch(EpochClaim(epoch: 2, nodeID: "b", requirement: .inSync(dataEpoch: 1)))
            #expect(state == CoordinatorState(epoch: 2, inSyncReplicas: [], leader: "b"))
            #expect(try await b.coordinator.load() == state)
        }
    }

    @Test("etcd on a closed port: load() and campaign() throw coordination errors naming the endpoint")
    func unreachable() async throws {
        let port = try EtcdTestServer.unusedLoopbackPort()
        let a = try EtcdElection(
            endpoint: EtcdEndpoint(host: "127.0.0.1", port: port, prefix: "/nowhere"),
            nodeID: "a",
            logger: ReplicationTestCluster.Workspace.logger
        )
        let loadError = await replicationError { _ = try await a.coordinator.load() }
        #expect(loadError?.code == .coordination)
        #expect(loadError?.message.contains("cannot reach etcd at 127.0.0.1:\(port)") == true)
        #expect(loadError?.message.contains("kv/range") == true)
        #expect(loadError?.message.lowercased().contains("refused") == true, "says why: \(loadError?.message ?? "")")

        let campaignError = await replicationError { _ = try await a.campaign(record("a")) }
        #expect(campaignError?.code == .coordination)
        #expect(campaignError?.message.contains("127.0.0.1:\(port)") == true)
        #expect(a.leadershipDeadline() == nil)
    }
}
