extension LeaderStateMachine {
    /// Starts holding confirms to the policy (called once the leader listens).
    mutating func startGating() {
        confirms.startGating()
    }

    /// A producer waits until the policy holds for `lsn`.
    /// - Returns: whether it holds now; if not, `waiter` is kept (resumed by a later event's
    ///   actions, or failed at `timeout`), and the open batch is sealed when it holds `lsn`.
    mutating func requestConfirm(
        _ lsn: UInt64, waiter: Waiter, timeout: Duration, at now: ContinuousClock.Instant
    ) -> (confirmed: Bool, actions: Actions) {
        var actions = Actions()
        if let reason = steppedDown {
            actions.failed.append((waiter, .notLeader("LSN \(lsn) is not confirmed: \(reason)")))
            return (false, actions)
        }
        if confirms.request(lsn, waiter: waiter, timeout: timeout, now: now) { return (true, actions) }
        // Only a confirm that waits seals its batch early: sealing for one that already holds
        // (an empty in-sync set) would send a frame per confirm, which no follower catching
        // up under sustained confirms could keep pace with.
        if sequencer.openBatchHolds(lsn) { seal(at: now, into: &actions) }
        return (false, actions)
    }

    /// In min-ISR(n) mode, a producer asks to write `bytes`: it goes while `n` in-sync
    /// followers are live with room for it, else waits in arrival order. Evict mode and a
    /// leader that does not listen yet never hold a write.
    /// - Returns: whether the write may go now; if not, `waiter` is kept.
    mutating func requestWrite(id: UInt64, bytes: Int, waiter: Waiter, timeout: Duration, at now: ContinuousClock.Instant) -> Bool {
        guard case .minInSyncReplicas = settings.policy, confirms.isGating else { return true }
        let room = roomCheck
        return throttle.request(id: id, bytes: bytes, waiter: waiter, timeout: timeout, now: now, hasRoom: room)
    }

    /// The leader no longer leads (a lost lease, a resignation): every waiting confirm and
    /// held write fails now with `notLeader`, and so does every later one. Writes already
    /// made stay in the files, unconfirmed.
    mutating func stepDown(reason: String) -> Actions {
        var actions = Actions()
        guard steppedDown == nil else { return actions }
        steppedDown = reason
        for confirm in confirms.removeAll() {
            actions.failed.append((confirm.waiter, .notLeader("LSN \(confirm.lsn) is not confirmed: \(reason)")))
        }
        for held in throttle.removeAll() {
            actions.failed.append((held.waiter, .notLeader("write of \(held.bytes) bytes refused: \(reason); nothing was written")))
        }
        return actions
    }

    /// A held producer was cancelled.
    mutating func cancelWrite(id: UInt64) -> Waiter? {
        throttle.cancel(id: id)
    }

    /// Producers held back by the min-ISR policy right now.
    var throttledProducers: Int { throttle.held.count }

    /// Periodic work: followers that lag too long leave, caught-up ones join, and confirms and
    /// held writes past their deadline fail.
    /// - Returns: the in-sync set to persist, if it should change.
    mutating func tick(at now: ContinuousClock.Instant) -> (change: Set<String>?, actions: Actions) {
        var actions = Actions()
        // Live-ness can change without an ack (a follower that just went live).
        for follower in followers.followers.values {
            let isLive = follower.mode == .live
            if var member = confirms.inSync.followers[follower.nodeID], member.isLive != isLive {
                member.isLive = isLive
                confirms.inSync.update(follower.nodeID, member)
            }
        }
        let expired = confirms.expire(at: now)
        counters.notEnoughReplicasErrors += expired.count
        actions.failed += expired
        let persisted = confirms.inSync.persisted
        for held in throttle.expire(at: now) {
            counters.notEnoughReplicasErrors += 1
            let live = followers.liveCount(among: persisted)
            actions.failed.append((held.waiter, .notEnoughReplicas(
                "write of \(held.bytes) bytes refused: \(live) in-sync followers are live with room, the policy \(settings.policy) needs \(neededForWrites) (waited \(held.timeout)); nothing was written"
            )))
        }
        let change = confirms.inSync.nextChange(at: now)
        // A joiner that stopped qualifying no longer holds confirms back.
        resolveConfirms(into: &actions)
        return (change, actions)
    }

    /// The coordinator stored `members` (nil: storing failed): confirms may rely on them now.
    mutating func inSyncPersisted(_ members: Set<String>?) -> Actions {
        var actions = Actions()
        if let members { confirms.inSync.didPersist(members) } else { confirms.inSync.failedToPersist() }
        resolveConfirms(into: &actions)
        return actions
    }

    /// Releases held writes that fit now and resolves the confirms that hold.
    mutating func resolveConfirms(into actions: inout Actions) {
        actions.confirmed += releaseThrottled()
        actions.confirmed += confirms.resolve()
    }

    mutating func releaseThrottled() -> [Waiter] {
        guard !throttle.held.isEmpty else { return [] }
        return throttle.release(hasRoom: roomCheck)
    }

    /// Whether `n` in-sync followers are live with room for a write of the given bytes (plus
    /// one batch).
    private var roomCheck: (Int) -> Bool {
        guard case .minInSyncReplicas(let n) = settings.policy else { return { _ in true } }
        let followers = self.followers
        let members = confirms.inSync.persisted
        let reserve = settings.batchBytes
        return { bytes in followers.liveWithRoom(among: members, bytes: bytes, reserve: reserve) >= n }
    }

    private var neededForWrites: String {
        switch settings.policy {
        case .evictSlowFollowers: "every in-sync follower"
        case .minInSyncReplicas(let n): "\(n)"
        }
    }
}
