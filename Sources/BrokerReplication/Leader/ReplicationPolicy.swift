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
