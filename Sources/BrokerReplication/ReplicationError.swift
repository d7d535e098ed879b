/// An error the module reports to the embedding broker, with a message a person can act on.
///
/// A public struct around a private code, so that new cases can be added without breaking
/// callers.
public struct ReplicationError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: Hashable, Sendable {
        case invalidSecret
        case invalidConfiguration
        case wire
        case coordination
        case notEnoughReplicas
        case promotionRefused
        case writeTimedOut
        case partialWrite
    }

    package let code: Code
    /// What went wrong and, where it helps, what to do about it.
    public let message: String

    package init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The shared secret is missing, unreadable or too short.
    public static func invalidSecret(_ message: String) -> ReplicationError {
        ReplicationError(code: .invalidSecret, message: message)
    }

    /// A configuration value is out of range.
    public static func invalidConfiguration(_ message: String) -> ReplicationError {
        ReplicationError(code: .invalidConfiguration, message: message)
    }

    /// The coordinator could not load or store the cluster state.
    public static func coordination(_ message: String) -> ReplicationError {
        ReplicationError(code: .coordination, message: message)
    }

    /// Fewer in-sync followers than the policy requires held the write within `producerTimeout`.
    public static func notEnoughReplicas(_ message: String) -> ReplicationError {
        ReplicationError(code: .notEnoughReplicas, message: message)
    }

    /// The follower cannot be promoted safely (it may lack confirmed writes), or it already was.
    public static func promotionRefused(_ message: String) -> ReplicationError {
        ReplicationError(code: .promotionRefused, message: message)
    }

    /// The write waited `producerTimeout` for earlier writes to the same file and was not made:
    /// nothing of it is written or replicated, so retrying it is safe.
    public static func writeTimedOut(_ message: String) -> ReplicationError {
        ReplicationError(code: .writeTimedOut, message: message)
    }

    /// A write above `chunkBytes` failed locally after its first chunks were written and
    /// replicated; the message says exactly which bytes (offsets and LSNs). Retrying the whole
    /// write would duplicate them: continue from the first byte not written instead.
    public static func partialWrite(_ message: String) -> ReplicationError {
        ReplicationError(code: .partialWrite, message: message)
    }

    /// True for ``writeTimedOut(_:)``.
    public var isWriteTimedOut: Bool { code == .writeTimedOut }

    /// True for ``partialWrite(_:)``.
    public var isPartialWrite: Bool { code == .partialWrite }

    /// True for ``promotionRefused(_:)``.
    public var isPromotionRefused: Bool { code == .promotionRefused }

    /// True for ``notEnoughReplicas(_:)``: the write is on the leader, but not replicated enough.
    public var isNotEnoughReplicas: Bool { code == .notEnoughReplicas }

    public var description: String { message }

    /// A configuration error that names the key and the rule, e.g. "queueBytes: must be …".
    package static func invalidSetting(_ key: String, _ rule: String) -> ReplicationError {
        .invalidConfiguration("\(key): \(rule)")
    }

    /// Cluster and node ids travel as short strings in the handshake: 1...255 bytes.
    package static func checkIdentifiers(clusterID: String, nodeID: String) throws(ReplicationError) {
        if !(1...255).contains(clusterID.utf8.count) { throw invalidSetting("clusterID", "must be 1...255 bytes of UTF-8") }
        if !(1...255).contains(nodeID.utf8.count) { throw invalidSetting("nodeID", "must be 1...255 bytes of UTF-8") }
    }
}
