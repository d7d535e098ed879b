import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The join rule on its own: confirms that always run a little ahead of a returning follower.
@Suite("In-sync set refills (state machine)")
struct InSyncJoinTests {
    let start = ContinuousClock.now

    /// With the set empty, each confirm resolves at the head as soon as it is asked for, and the
    /// follower's ack trails the head by one group commit. A joiner must still get in: once it
    /// qualifies in every other way, confirms wait for it, so the head stops running away.
    @Test func aFollowerTrailingConfirmsByOneGroupCommitJoins() {
        var isr = InSyncReplicas(maxLagTime: .seconds(2))
        var head: UInt64 = 100
        var joined = false
        for tick in 1...50 {
            let now = start + .milliseconds(20 * tick)
            // The follower holds what was written up to one group commit ago.
            isr.update("f1", .init(ackedLSN: head - 5, caughtUpAt: now, isLive: true))
            // Producers confirm the head whenever their confirm holds.
            head += 10
            if isr.confirms(head, policy: .evictSlowFollowers) { isr.didConfirm(head) }
            if let change = isr.nextChange(at: now) {
                isr.didPersist(change)
                joined = change == ["f1"]
                break
            }
        }
        #expect(joined, "the follower never joined: the highest confirm stayed \(isr.highestConfirmed - (head - 15)) ahead of its ack")
        // And a member still holds every confirmed write.
        #expect(isr.followers["f1"]!.ackedLSN >= isr.highestConfirmed)
    }
}
