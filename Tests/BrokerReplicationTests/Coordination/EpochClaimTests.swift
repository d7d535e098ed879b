import Testing

@testable import BrokerReplication

/// The one rule every coordinator applies inside its compare-and-set.
@Suite("Epoch claims")
struct EpochClaimTests {
    let stored = CoordinatorState(epoch: 4, inSyncReplicas: ["b", "c"], leader: "a")

    @Test func aMemberOfTheStoredSetTakesTheNextEpochWithAnEmptySet() throws {
        let next = try EpochClaim(epoch: 5, nodeID: "b", requirement: .inSync(dataEpoch: 4)).apply(to: stored)
        #expect(next == CoordinatorState(epoch: 5, inSyncReplicas: [], leader: "b"))
    }

    @Test func theLeaderThatStoredTheSetMayTakeOverAgain() throws {
        let next = try EpochClaim(epoch: 5, nodeID: "a", requirement: .inSync(dataEpoch: 4)).apply(to: stored)
        #expect(next.leader == "a" && next.epoch == 5)
    }

    @Test func aNodeOutsideTheSetIsRefused() {
        #expect {
            _ = try EpochClaim(epoch: 5, nodeID: "d", requirement: .inSync(dataEpoch: 4)).apply(to: stored)
        } throws: { error in
            (error as? ReplicationError)?.code == .promotionRefused && "\(error)".contains("neither in the in-sync set of epoch 4 (b, c)")
        }
    }

    @Test func dataOfAnotherEpochIsRefused() {
        #expect {
            _ = try EpochClaim(epoch: 5, nodeID: "b", requirement: .inSync(dataEpoch: 3)).apply(to: stored)
        } throws: { error in
            (error as? ReplicationError)?.code == .promotionRefused && "\(error)".contains("holds data of epoch 3")
        }
    }

    @Test func anEpochAlreadyTakenByAnotherNodeIsRefused() {
        for requirement in [EpochClaim.Requirement.newerEpoch, .inSync(dataEpoch: 4)] {
            #expect {
                _ = try EpochClaim(epoch: 4, nodeID: "b", requirement: requirement).apply(to: stored)
            } throws: { error in
                (error as? ReplicationError)?.code == .coordination && "\(error)".contains("epoch 4 was claimed by \"a\"")
            }
        }
    }

    @Test func theSameClaimAgainChangesNothing() throws {
        let claimed = try EpochClaim(epoch: 5, nodeID: "b", requirement: .inSync(dataEpoch: 4)).apply(to: stored)
        // The promoted node's leader claims its epoch again when it starts.
        #expect(try EpochClaim(epoch: 5, nodeID: "b", requirement: .newerEpoch).apply(to: claimed) == claimed)
        #expect(throws: ReplicationError.self) { try EpochClaim(epoch: 5, nodeID: "c", requirement: .newerEpoch).apply(to: claimed) }
    }

    @Test func aClusterThatNeverHadALeaderTakesAnyNode() throws {
        let empty = CoordinatorState(epoch: 0, inSyncReplicas: [])
        #expect(try EpochClaim(epoch: 1, nodeID: "z", requirement: .inSync(dataEpoch: 0)).apply(to: empty).leader == "z")
    }

    @Test func aForcedClaimNeedsOnlyANewerEpoch() throws {
        #expect(try EpochClaim(epoch: 9, nodeID: "d", requirement: .newerEpoch).apply(to: stored).epoch == 9)
    }
}
