import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("In-sync replicas (state machine)")
struct InSyncReplicasStateMachineTests {
    let start = ContinuousClock.now

    @Test func followersJoinWhenCaughtUpAndLeaveAfterMaxLagTime() {
        var isr = InSyncReplicas(maxLagTime: .seconds(10))
        isr.update("a", .init(ackedLSN: 5, caughtUpAt: start, isLive: true))
        isr.update("b", .init(ackedLSN: 5, caughtUpAt: start, isLive: false))
        #expect(isr.desired(at: start + .seconds(1)) == ["a"], "b is not live yet")
        #expect(isr.desired(at: start + .seconds(11)) == [], "a has not caught up for 11 s")
        #expect(isr.nextChange(at: start) == ["a"])
        #expect(isr.nextChange(at: start) == nil, "one change at a time")
        isr.didPersist(["a"])
        isr.remove("a")
        #expect(isr.nextChange(at: start) == [])
    }

    @Test func confirmsCountOnlyThePersistedSet() {
        var isr = InSyncReplicas(maxLagTime: .seconds(10))
        isr.update("a", .init(ackedLSN: 10, caughtUpAt: start, isLive: true))
        isr.update("b", .init(ackedLSN: 4, caughtUpAt: start, isLive: true))
        // Nothing persisted yet: evict mode holds trivially, min-ISR(1) does not.
        #expect(isr.confirms(8, policy: .evictSlowFollowers))
        #expect(!isr.confirms(8, policy: .minInSyncReplicas(1)))
        isr.didPersist(["a", "b"])
        #expect(!isr.confirms(8, policy: .evictSlowFollowers), "b has not acked 8")
        #expect(isr.confirms(8, policy: .minInSyncReplicas(1)))
        #expect(!isr.confirms(8, policy: .minInSyncReplicas(2)))
        #expect(isr.confirms(4, policy: .minInSyncReplicas(2)))
        // b leaves, but until the shrink is persisted a confirm still waits for it.
        isr.remove("b")
        #expect(!isr.confirms(8, policy: .evictSlowFollowers))
        isr.didPersist(["a"])
        #expect(isr.confirms(8, policy: .evictSlowFollowers))
    }
    /// Every member of the persisted set must hold every confirmed write (promotion relies on
    /// it), so a joiner waits until it holds the highest confirm, and a join being stored
    /// already holds up confirms in evict mode.
    @Test func aJoinerHoldsEveryConfirmedWrite() {
        var isr = InSyncReplicas(maxLagTime: .seconds(10))
        isr.update("a", .init(ackedLSN: 20, caughtUpAt: start, isLive: true))
        isr.didPersist(["a"])
        #expect(isr.confirms(20, policy: .evictSlowFollowers))
        isr.didConfirm(20)
        // b was caught up a moment ago but lacks LSN 20, which a confirm already relied on.
        isr.update("b", .init(ackedLSN: 15, caughtUpAt: start, isLive: true))
        #expect(isr.desired(at: start) == ["a"])
        isr.update("b", .init(ackedLSN: 20, caughtUpAt: start, isLive: true))
        #expect(isr.nextChange(at: start) == ["a", "b"])
        // While the join is being stored, a confirm of 21 needs b as well as a.
        isr.update("a", .init(ackedLSN: 21, caughtUpAt: start, isLive: true))
        #expect(!isr.confirms(21, policy: .evictSlowFollowers))
        isr.update("b", .init(ackedLSN: 21, caughtUpAt: start, isLive: true))
        #expect(isr.confirms(21, policy: .evictSlowFollowers))
    }
}
