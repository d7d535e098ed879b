/// The slow-follower policy of a deployment.
///
/// It encodes as its ``description``, one string (`"evict-slow-followers"`,
/// `"min-in-sync-replicas(2)"`), as in ``LeaderStatus/policy``.
public enum ReplicationPolicy: Hashable, Sendable, CustomStringConvertible, Codable {
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

    /// The policy ``description`` names, or nil.
    init?(description: String) {
        if description == "evict-slow-followers" {
            self = .evictSlowFollowers
            return
        }
        let prefix = "min-in-sync-replicas("
        guard description.hasPrefix(prefix), description.hasSuffix(")"),
              let n = Int(description.dropFirst(prefix.count).dropLast()) else { return nil }
        self = .minInSyncReplicas(n)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let policy = ReplicationPolicy(description: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(text.debugDescription) is not \"evict-slow-followers\" or \"min-in-sync-replicas(n)\""
            )
        }
        self = policy
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
