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

    /// The policy as one string, `evict-slow-followers` or `min-in-sync-replicas(n)`, as in
    /// logs and the JSON encoding.
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

    /// Decodes a policy from its ``description`` string.
    ///
    /// - Parameter decoder: a decoder holding one string.
    /// - Throws: `DecodingError.dataCorrupted` when the string is not `evict-slow-followers`
    ///   or `min-in-sync-replicas(n)` with a whole number n; the decoder's own error when the
    ///   value is not a string. Not a ``ReplicationError``: this is `Codable` conformance.
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

    /// Encodes the policy as its ``description`` string.
    ///
    /// - Parameter encoder: the encoder to write one string to.
    /// - Throws: the encoder's own error, if it cannot take a single string value.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
