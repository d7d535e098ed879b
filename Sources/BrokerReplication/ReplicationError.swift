/// The error the module reports to the embedding broker, with a message a person can act on.
///
/// Every public API of the module throws a `ReplicationError` (or `CancellationError` when
/// the caller was cancelled, or what a broker's own ``Coordinator`` threw). A broker tells the
/// cases apart by ``code``:
///
/// ```swift
/// do {
///     try await leader.waitForReplication(upTo: lsn)
/// } catch let error as ReplicationError where error.code == .notEnoughReplicas {
///     // nack the publisher; the write stays on the leader
/// }
/// ```
///
/// A public struct around a private code, so that new codes can be added without breaking
/// callers (as swift-service-lifecycle's `ServiceGroupError` does): a `switch` on ``code``
/// needs a `default`.
public struct ReplicationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure an error is; match it with `==` or in a `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case notEnoughReplicas
            case writeTimedOut
            case partialWrite
            case invalidPath
            case storage
            case invalidConfiguration
            case invalidSecret
            case handshakeRefused
            case protocolViolation
            case coordination
            case promotionRefused
            case notLeader
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// Fewer in-sync followers than the policy requires held a write or confirm within
        /// `producerTimeout`; what was written stays on the leader.
        public static let notEnoughReplicas = Code(.notEnoughReplicas)
        /// A write waited `producerTimeout` behind earlier writes to its file and was not made;
        /// retrying it is safe.
        public static let writeTimedOut = Code(.writeTimedOut)
        /// A write above `chunkBytes` failed locally after its first chunks were written and
        /// replicated; the message names them.
        public static let partialWrite = Code(.partialWrite)
        /// A path breaks a rule of ``ReplicatedPath``; nothing was written.
        public static let invalidPath = Code(.invalidPath)
        /// A file-system operation failed (disk full, permissions, a data directory that is not
        /// a directory); the message names the file, the operation and the errno.
        public static let storage = Code(.storage)
        /// A configuration value is missing, malformed or out of range; the message names the key.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The shared secret is missing, unreadable or too short.
        public static let invalidSecret = Code(.invalidSecret)
        /// The handshake between a follower and its leader was refused, by either side: a
        /// wrong secret or cluster, a node id already connected, an unsupported version.
        public static let handshakeRefused = Code(.handshakeRefused)
        /// A peer sent a corrupt or unexpected frame; the connection closes and resyncs.
        public static let protocolViolation = Code(.protocolViolation)
        /// The coordinator could not load or store the cluster state, or fenced this leader.
        public static let coordination = Code(.coordination)
        /// The follower cannot be promoted safely (it may lack confirmed writes), or it already was.
        public static let promotionRefused = Code(.promotionRefused)
        /// This node no longer leads: its election lease expired or was lost, it resigned, or it
        /// steps down; nothing more is confirmed here. Publish to the new leader.
        public static let notLeader = Code(.notLeader)

        /// The code's name, e.g. `notEnoughReplicas`.
        public var description: String {
            switch value {
            case .notEnoughReplicas: "notEnoughReplicas"
            case .writeTimedOut: "writeTimedOut"
            case .partialWrite: "partialWrite"
            case .invalidPath: "invalidPath"
            case .storage: "storage"
            case .invalidConfiguration: "invalidConfiguration"
            case .invalidSecret: "invalidSecret"
            case .handshakeRefused: "handshakeRefused"
            case .protocolViolation: "protocolViolation"
            case .coordination: "coordination"
            case .promotionRefused: "promotionRefused"
            case .notLeader: "notLeader"
            }
        }
    }

    /// The module's own error that this one reports, kept for the module's tests and logs.
    enum Underlying: Hashable, Sendable {
        case storage(StorageError)
        case wire(WireError)
    }

    /// What kind of failure this is.
    public let code: Code
    /// What went wrong and, where it helps, what to do about it.
    public let message: String
    /// The internal error this one was made from, if any.
    let underlying: Underlying?

    init(code: Code, message: String, underlying: Underlying? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// A file-system failure, with the storage error's text as the message.
    init(_ error: StorageError) {
        self.init(code: .storage, message: error.description, underlying: .storage(error))
    }

    /// Bytes or a path refused by a decoder, with the wire error's text as the message: a
    /// bad path is ``Code/invalidPath``, anything else ``Code/protocolViolation``.
    init(_ error: WireError) {
        let code: Code = if case .invalidPath = error.code { .invalidPath } else { .protocolViolation }
        self.init(code: code, message: error.description, underlying: .wire(error))
    }

    /// What a public API throws for `error`: the module's internal ``StorageError`` and
    /// ``WireError`` become a `ReplicationError` with the same message; anything else (a
    /// `ReplicationError`, `CancellationError`, a broker's coordinator's error) is unchanged.
    static func publicError(for error: any Error) -> any Error {
        switch error {
        case let error as StorageError: ReplicationError(error)
        case let error as WireError: ReplicationError(error)
        default: error
        }
    }

    /// The shared secret is missing, unreadable or too short.
    ///
    /// - Parameter message: what is wrong with the secret, e.g. how many bytes it has.
    public static func invalidSecret(_ message: String) -> ReplicationError {
        ReplicationError(code: .invalidSecret, message: message)
    }

    /// A configuration value is out of range.
    ///
    /// - Parameter message: the key and the rule it breaks, e.g. "queueBytes: must be …".
    public static func invalidConfiguration(_ message: String) -> ReplicationError {
        ReplicationError(code: .invalidConfiguration, message: message)
    }

    /// The coordinator could not load or store the cluster state.
    ///
    /// A broker's own ``Coordinator`` can throw it too.
    ///
    /// - Parameter message: what failed, e.g. the epoch another leader claimed or the file and errno.
    public static func coordination(_ message: String) -> ReplicationError {
        ReplicationError(code: .coordination, message: message)
    }

    /// Fewer in-sync followers than the policy requires held the write within `producerTimeout`.
    ///
    /// - Parameter message: which write or confirm, and how many followers held it.
    public static func notEnoughReplicas(_ message: String) -> ReplicationError {
        ReplicationError(code: .notEnoughReplicas, message: message)
    }

    /// The follower cannot be promoted safely (it may lack confirmed writes), or it already was.
    ///
    /// - Parameter message: why the promotion is refused.
    public static func promotionRefused(_ message: String) -> ReplicationError {
        ReplicationError(code: .promotionRefused, message: message)
    }

    /// The write waited `producerTimeout` for earlier writes to the same file and was not made:
    /// nothing of it is written or replicated, so retrying it is safe.
    ///
    /// - Parameter message: the write, the file and how long it waited.
    public static func writeTimedOut(_ message: String) -> ReplicationError {
        ReplicationError(code: .writeTimedOut, message: message)
    }

    /// A write above `chunkBytes` failed locally after its first chunks were written and
    /// replicated; the message says exactly which bytes (offsets and LSNs). Retrying the whole
    /// write would duplicate them: continue from the first byte not written instead.
    ///
    /// - Parameter message: the file, the offsets and LSNs written and replicated, and the
    ///   offset from which nothing was written.
    public static func partialWrite(_ message: String) -> ReplicationError {
        ReplicationError(code: .partialWrite, message: message)
    }

    /// This node no longer leads, so it confirms nothing more.
    ///
    /// - Parameter message: why leadership ended (a lost lease, a resignation, a stalled disk).
    public static func notLeader(_ message: String) -> ReplicationError {
        ReplicationError(code: .notLeader, message: message)
    }

    /// True for ``notLeader(_:)``: publish to the new leader instead.
    public var isNotLeader: Bool { code == .notLeader }

    /// True for ``writeTimedOut(_:)``.
    public var isWriteTimedOut: Bool { code == .writeTimedOut }

    /// True for ``partialWrite(_:)``.
    public var isPartialWrite: Bool { code == .partialWrite }

    /// True for ``promotionRefused(_:)``.
    public var isPromotionRefused: Bool { code == .promotionRefused }

    /// True for ``notEnoughReplicas(_:)``: the write is on the leader, but not replicated enough.
    public var isNotEnoughReplicas: Bool { code == .notEnoughReplicas }

    /// True for a ``Code/storage`` error caused by a full disk or an exhausted quota
    /// (`ENOSPC`, `EDQUOT`): the broker may stop accepting writes until space is freed.
    public var isDiskFull: Bool {
        if case .storage(let error) = underlying { return error.isDiskFull }
        return false
    }

    /// The ``message``, so that `"\(error)"` reads as the message alone.
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
