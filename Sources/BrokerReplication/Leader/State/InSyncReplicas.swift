

/// Decides which followers are in sync, and when a confirm holds: a pure state machine.
///
/// A follower is in sync while it is live (streaming, not syncing) and was caught up at some
/// point within `maxLagTime`, like Kafka's `replica.lag.time.max.ms`. "Caught up at t" means
/// it had acked everything the leader sealed before t. Confirms count only the *persisted*
/// set: a change takes effect for confirms once the coordinator has stored it.
///
/// In evict mode every member of the persisted set holds every confirmed write, which is what
/// makes promoting a member safe. Two rules keep that true across a join, as Kafka's
/// high-watermark rule does: a follower joins only once it holds the highest LSN confirmed so
/// far, and from the moment its join is handed to the coordinator, confirms wait for it too.
///
/// The first rule alone never lets a follower back in while confirms keep coming: with the set
/// empty they resolve at once, at the head, always a few milliseconds ahead of any follower's
/// ack. So a follower that qualifies in every other way is *joining*: confirms wait for it as
/// for a member (evict mode), the highest confirmed LSN stops running ahead of it, and it
/// joins at the next tick. A joiner that falls behind for `maxLagTime` stops being one.
struct InSyncReplicas: Sendable {
    struct Follower: Sendable, Equatable {
        var ackedLSN: UInt64
        var caughtUpAt: ContinuousClock.Instant
        var isLive: Bool
    }

    let maxLagTime: Duration
    private(set) var followers: [String: Follower] = [:]
    /// What the coordinator holds; confirms rely on this set only.
    private(set) var persisted: Set<String> = []
    /// A change handed to the coordinator and not yet stored.
    private(set) var pending: Set<String>?
    /// Caught up and live, but lacking the highest confirmed LSN: confirms wait for them.
    private(set) var joining: Set<String> = []
    /// The highest LSN a confirm has resolved for: a joiner must hold it.
    private(set) var highestConfirmed: UInt64 = 0

    init(maxLagTime: Duration) {
        self.maxLagTime = maxLagTime
    }

    mutating func update(_ nodeID: String, _ follower: Follower) {
        followers[nodeID] = follower
    }

    mutating func remove(_ nodeID: String) {
        followers[nodeID] = nil
        joining.remove(nodeID)
    }

    /// The set that should be in sync now.
    func desired(at now: ContinuousClock.Instant) -> Set<String> {
        candidates(at: now).filter { id in
            // A joiner that lacks a confirmed write would break "every member holds every confirm".
            persisted.contains(id) || (followers[id]?.ackedLSN ?? 0) >= highestConfirmed
        }
    }

    /// Live followers caught up within `maxLagTime`.
    private func candidates(at now: ContinuousClock.Instant) -> Set<String> {
        Set(followers.compactMap { id, follower in
            follower.isLive && now - follower.caughtUpAt <= maxLagTime ? id : nil
        })
    }

    /// Records that a confirm for `lsn` resolved.
    mutating func didConfirm(_ lsn: UInt64) {
        highestConfirmed = max(highestConfirmed, lsn)
    }

    /// The next set to persist, when it differs and no other change is being persisted.
    mutating func nextChange(at now: ContinuousClock.Instant) -> Set<String>? {
        let wanted = desired(at: now)
        joining = candidates(at: now).subtracting(wanted).subtracting(persisted)
        guard pending == nil else { return nil }
        guard wanted != persisted else { return nil }
        pending = wanted
        return wanted
    }

    mutating func didPersist(_ members: Set<String>) {
        persisted = members
        pending = nil
    }

    mutating func failedToPersist() {
        pending = nil
    }

    /// In-sync members that hold `lsn`.
    func membersHolding(_ lsn: UInt64) -> Int {
        persisted.reduce(0) { count, id in count + (holds(id, lsn) ? 1 : 0) }
    }

    private func holds(_ id: String, _ lsn: UInt64) -> Bool {
        (followers[id]?.ackedLSN ?? 0) >= lsn
    }

    /// Whether a confirm for `lsn` holds under `policy`.
    func confirms(_ lsn: UInt64, policy: ReplicationPolicy) -> Bool {
        switch policy {
        case .evictSlowFollowers:
            // A member whose join is being stored counts already; one whose removal is being
            // stored still counts until the removal is durable.
            persisted.allSatisfy { holds($0, lsn) } && (pending ?? []).allSatisfy { holds($0, lsn) }
                && joining.allSatisfy { holds($0, lsn) }
        case .minInSyncReplicas(let n): membersHolding(lsn) >= n
        }
    }
}
