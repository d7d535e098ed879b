/// The pure decisions of a ``ClusterNode``: whether it may campaign, and whether a leader
/// must step down.
enum LeadershipCheck {
    /// What a node's data directory says about the epoch of its files.
    struct LocalData: Equatable {
        /// The follower position's epoch (0: none, or a sync began and did not finish).
        var followedEpoch: UInt64
        /// The last epoch a leader took on this directory (`.brpl/leader-epoch`).
        var ledEpoch: UInt64

        /// The epoch the files hold: the followed one when the node last followed, the led
        /// one when it last led (a promotion leaves the position behind the new epoch).
        var dataEpoch: UInt64 { followedEpoch > 0 && followedEpoch >= ledEpoch ? followedEpoch : ledEpoch }
        /// Whether the files are a follower's copy: a promotion goes through the follower.
        var isFollowerCopy: Bool { followedEpoch > 0 && followedEpoch >= ledEpoch }
    }

    /// Why `nodeID` may not campaign against `stored`, nil when it may.
    ///
    /// It applies the claim that leading would make, so the answer is the one the
    /// coordinator's compare-and-set will give, unless the state changes meanwhile.
    static func refusal(nodeID: String, data: LocalData, stored: CoordinatorState, unclean: Bool) -> String? {
        if unclean { return nil }
        let claim = EpochClaim(epoch: max(data.dataEpoch, stored.epoch) + 1, nodeID: nodeID, requirement: .inSync(dataEpoch: data.dataEpoch))
        do {
            _ = try claim.apply(to: stored)
            return nil
        } catch {
            return error.message
        }
    }

    /// Why a leader must step down now, nil while it may go on confirming.
    ///
    /// - Parameters:
    ///   - deadline: the election's ``LeaderElection/leadershipDeadline()``.
    ///   - oldestWrite: how long the oldest local write in progress has run.
    ///   - stallLimit: the configuration's `writeStallLimit`.
    ///   - leaderEnded: why the leader's `run()` ended, if it did.
    static func stepDownReason(
        now: ContinuousClock.Instant, deadline: ContinuousClock.Instant?, oldestWrite: Duration, stallLimit: Duration, leaderEnded: String?
    ) -> String? {
        guard let deadline else { return "the election lease was lost (expired or revoked)" }
        if now >= deadline { return "the election lease could not be renewed in time (is the coordination service reachable?)" }
        if oldestWrite >= stallLimit { return "a local write has stalled for \(oldestWrite) (writeStallLimit \(stallLimit))" }
        if let leaderEnded { return "the leader stopped: \(leaderEnded)" }
        return nil
    }
}
