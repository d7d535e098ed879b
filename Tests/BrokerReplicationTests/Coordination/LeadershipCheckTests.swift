import Testing

@testable import BrokerReplication

@Suite("Leadership checks")
struct LeadershipCheckTests {
    typealias Data = LeadershipCheck.LocalData
    let stored = CoordinatorState(epoch: 4, inSyncReplicas: ["b"], leader: "a")

    @Test func aFollowerCopyOfTheStoredEpochInTheSetMayLead() {
        #expect(LeadershipCheck.refusal(nodeID: "b", data: Data(followedEpoch: 4, ledEpoch: 0), stored: stored, unclean: false) == nil)
        #expect(Data(followedEpoch: 4, ledEpoch: 2).isFollowerCopy)
    }

    @Test func theLeaderOfTheStoredEpochMayLeadAgainOnItsOwnData() {
        // A promotion leaves the follower position behind: the led epoch is newer.
        let data = Data(followedEpoch: 3, ledEpoch: 4)
        #expect(!data.isFollowerCopy && data.dataEpoch == 4)
        #expect(LeadershipCheck.refusal(nodeID: "a", data: data, stored: stored, unclean: false) == nil)
    }

    @Test func nodesThatMayLackConfirmedWritesMayNot() {
        let outsider = LeadershipCheck.refusal(nodeID: "c", data: Data(followedEpoch: 4, ledEpoch: 0), stored: stored, unclean: false)
        #expect(outsider?.contains("neither in the in-sync set") == true)
        let stale = LeadershipCheck.refusal(nodeID: "b", data: Data(followedEpoch: 3, ledEpoch: 0), stored: stored, unclean: false)
        #expect(stale?.contains("holds data of epoch 3") == true)
        let empty = LeadershipCheck.refusal(nodeID: "b", data: Data(followedEpoch: 0, ledEpoch: 0), stored: stored, unclean: false)
        #expect(empty != nil)
        #expect(LeadershipCheck.refusal(nodeID: "c", data: Data(followedEpoch: 0, ledEpoch: 0), stored: stored, unclean: true) == nil)
    }

    @Test func aFreshClusterTakesAFreshNode() {
        let fresh = CoordinatorState(epoch: 0, inSyncReplicas: [])
        #expect(LeadershipCheck.refusal(nodeID: "n", data: Data(followedEpoch: 0, ledEpoch: 0), stored: fresh, unclean: false) == nil)
    }

    @Test func aLeaderStepsDownOnALostOrExpiringLeaseAStalledDiskOrAStop() {
        let now = ContinuousClock.now
        func reason(deadline: ContinuousClock.Instant?, write: Duration = .zero, ended: String? = nil) -> String? {
            LeadershipCheck.stepDownReason(now: now, deadline: deadline, oldestWrite: write, stallLimit: .seconds(10), leaderEnded: ended)
        }
        #expect(reason(deadline: now + .seconds(1)) == nil)
        #expect(reason(deadline: nil)?.contains("lost") == true)
        #expect(reason(deadline: now)?.contains("could not be renewed") == true)
        #expect(reason(deadline: now + .seconds(1), write: .seconds(10))?.contains("stalled") == true)
        #expect(reason(deadline: now + .seconds(1), write: .seconds(9)) == nil)
        #expect(reason(deadline: now + .seconds(1), ended: "port in use")?.contains("port in use") == true)
    }
}
