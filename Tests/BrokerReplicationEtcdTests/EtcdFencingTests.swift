import BrokerReplication
import BrokerReplicationTesting
import Testing

@testable import BrokerReplicationEtcd

/// A deposed leader's writes are refused by etcd itself, whatever the deposed node believes.
@Suite("EtcdCoordinator fencing", .serialized)
struct EtcdFencingTests {
    @Test("after A's lease is revoked and B claims epoch 2, A's writes fail as fenced and B's state stays")
    func deposedLeaderIsFenced() async throws {
        try await withEtcd { etcd in
            let prefix = uniquePrefix("fencing")
            let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
            let b = try makeElection(etcd, prefix: prefix, nodeID: "b")
            #expect(try await a.campaign(record("a")))
            _ = try await a.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            try await a.coordinator.storeInSyncReplicas(["b"], epoch: 1)

            try await revokeLeaderLease(of: a)
            #expect(try await b.campaign(record("b")))
            let bState = try await b.coordinator.claimEpoch(EpochClaim(epoch: 2, nodeID: "b", requirement: .inSync(dataEpoch: 1)))
            #expect(bState == CoordinatorState(epoch: 2, inSyncReplicas: [], leader: "b"))

            // A does not run its keepalives here, so it still believes it leads: etcd decides.
            #expect(a.leadershipDeadline() != nil)
            let storeError = await replicationError { try await a.coordinator.storeInSyncReplicas(["x"], epoch: 1) }
            #expect(storeError?.code == .coordination)
            #expect(storeError?.message.contains("fenced") == true)
            #expect(storeError?.message.contains("\"b\"") == true, "names the node that leads now: \(storeError?.message ?? "")")

            let claimError = await replicationError {
                _ = try await a.coordinator.claimEpoch(EpochClaim(epoch: 3, nodeID: "a", requirement: .newerEpoch))
            }
            #expect(claimError?.code == .coordination)
            #expect(claimError?.message.contains("fenced") == true)

            // Even the claim A once made, which would write nothing, is not confirmed to A.
            let reclaimError = await replicationError {
                _ = try await a.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            }
            #expect(reclaimError?.message.contains("fenced") == true)

            #expect(try await a.coordinator.load() == bState)
            #expect(try await a.leader() == record("b"))
        }
    }

    @Test("after A resigns, nobody leads and A's writes are fenced")
    func resignedLeaderIsFenced() async throws {
        try await withEtcd { etcd in
            let prefix = uniquePrefix("resign")
            let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
            #expect(try await a.campaign(record("a")))
            _ = try await a.coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            try await a.resign()
            #expect(a.leadershipDeadline() == nil)
            #expect(try await a.leader() == nil)

            let error = await replicationError { try await a.coordinator.storeInSyncReplicas(["x"], epoch: 1) }
            #expect(error?.code == .coordination)
            #expect(error?.message.contains("fenced") == true)
            #expect(error?.message.contains("nobody") == true)
            #expect(try await a.coordinator.load() == CoordinatorState(epoch: 1, inSyncReplicas: [], leader: "a"))

            // B wins at once: the resignation deleted the key instead of leaving it to expire.
            let b = try makeElection(etcd, prefix: prefix, nodeID: "b")
            #expect(try await b.campaign(record("b")))
        }
    }
}
