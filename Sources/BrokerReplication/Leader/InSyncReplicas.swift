/// The slow-follower policy of a deployment.
public enum ReplicationPolicy: Hashable, Sendable, CustomStringConvertible {
    /// Producers never wait for followers; a follower that falls behind is evicted. A confirm
    /// resolves once every in-sync follower holds the write.
    case evictSlowFollowers
    /// A confirm resolves once `n` in-sync followers hold the write durably, and fails with
    /// `notEnoughReplicas` after `producerTimeout` otherwise.
    case minInSyncReplicas(Int)

    public var description: String {
        switch self {
        case .evictSlowFollowers: "evict-slow-followers"
        case .minInSyncReplicas(let n): "min-in-sync-replicas(\(n))"
        }
    }
}

/// Decides which followers are in sync, and when a confirm holds: a pure state machine.
///
/// A follower is in sync while it is live (streaming, not syncing) and was caught up at some
/// point within `maxLagTime`, like Kafka's `replica.lag.time.max.ms`. "Caught up at t" means
/// it had acked everything the leader sealed before t. Confirms count only the *persisted*
/// set: a change takes effect for confirms once the coordinator has stored it.
package struct InSyncReplicas: Sendable {
    package struct Follower: Sendable, Equatable {
        package var ackedLSN: UInt64
        package var caughtUpAt: ContinuousClock.Instant
        package var isLive: Bool
    }

    package let maxLagTime: Duration
    package private(set) var followers: [String: Follower] = [:]
    /// What the coordinator holds; confirms rely on this set only.
    package private(set) var persisted: Set<String> = []
    /// A change handed to the coordinator and not yet stored.
    package private(set) var pending: Set<String>?

    package init(maxLagTime: Duration) {
        self.maxLagTime = maxLagTime
    }

    package mutating func update(_ nodeID: String, _ follower: Follower) {
        followers[nodeID] = follower
    }

    package mutating func remove(_ nodeID: String) {
        followers[nodeID] = nil
    }

    /// The set that should be in sync now.
    package func desired(at now: ContinuousClock.Instant) -> Set<String> {
        Set(followers.compactMap { id, follower in follower.isLive && now - follower.caughtUpAt <= maxLagTime ? id : nil })
    }

    /// The next set to persist, when it differs and no other change is being persisted.
    package mutating func nextChange(at now: ContinuousClock.Instant) -> Set<String>? {
        guard pending == nil else { return nil }
        let wanted = desired(at: now)
        guard wanted != persisted else { return nil }
        pending = wanted
        return wanted
    }

    package mutating func didPersist(_ members: Set<String>) {
        persisted = members
        pending = nil
    }

    package mutating func failedToPersist() {
        pending = nil
    }

    /// In-sync members that hold `lsn`.
    package func membersHolding(_ lsn: UInt64) -> Int {
        persisted.reduce(0) { count, id in count + ((followers[id]?.ackedLSN ?? 0) >= lsn ? 1 : 0) }
    }

    /// Whether a confirm for `lsn` holds under `policy`.
    package func confirms(_ lsn: UInt64, policy: ReplicationPolicy) -> Bool {
        switch policy {
        case .evictSlowFollowers: membersHolding(lsn) == persisted.count
        case .minInSyncReplicas(let n): membersHolding(lsn) >= n
        }
    }
}
