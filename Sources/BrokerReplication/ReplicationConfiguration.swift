import Foundation

/// A deployment's replication settings as an operator writes them: a JSON file, overridable by
/// environment variables, every field optional with the default below.
///
/// ```json
/// { "policy": "minInSyncReplicas", "minInSyncReplicas": 2, "producerTimeoutSeconds": 8, "reconnectCapSeconds": 2 }
/// ```
///
/// Environment variables override the file: `BRPL_` and the key in upper snake case, e.g.
/// `BRPL_POLICY=evictSlowFollowers`, `BRPL_QUEUE_BYTES=33554432`, `BRPL_ACK_TIMEOUT_SECONDS=1.5`.
/// A bad value fails with an error that names the key and what is allowed. Every value is read
/// through swift-configuration: ``load(file:environment:)`` for the file and the environment, or
/// ``init(reader:)`` with a broker's own `ConfigReader` (for example scoped to `replication`).
///
/// One file serves both roles, so it also checks the rules that tie a follower's setting to a
/// leader's (Docs/Semantics.md, "Reconnects": every retry budget is shorter than the deadline it serves):
///
/// | budget | deadline it serves | why |
/// |---|---|---|
/// | `heartbeatIntervalSeconds` | `heartbeatTimeoutSeconds` | an idle but healthy link must be heard from (leader) and hear from the leader (follower's silence timeout) before either side gives up |
/// | `ackTimeoutSeconds` | `producerTimeoutSeconds` | a dead in-sync follower must be evicted, and so leave the in-sync set, before the confirms waiting for it fail |
/// | `maxLagTimeSeconds` + 0.5 s to store the change | `producerTimeoutSeconds` | a lagging (but acking) in-sync follower must leave the in-sync set before the confirms waiting for it fail |
/// | `reconnectCapSeconds` + `connectTimeoutSeconds` | `producerTimeoutSeconds` (min-ISR only) | an evicted follower must be able to reconnect before the producers it holds back give up |
public struct ReplicationConfiguration: Encodable, Sendable, Equatable {
    /// The `policy` key: which ``ReplicationPolicy`` the leader follows, spelled as in the file
    /// and in `BRPL_POLICY`.
    public enum Policy: String, Hashable, Sendable, Encodable, CaseIterable {
        /// ``ReplicationPolicy/evictSlowFollowers``.
        case evictSlowFollowers
        /// ``ReplicationPolicy/minInSyncReplicas(_:)`` with n from the `minInSyncReplicas` key.
        case minInSyncReplicas

        /// The policy a file or environment value names.
        ///
        /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
        ///   naming the key and the allowed values.
        static func named(_ text: String) throws(ReplicationError) -> Policy {
            guard let policy = Policy(rawValue: text) else {
                throw .invalidSetting("policy", "must be \"evictSlowFollowers\" or \"minInSyncReplicas\", got \(text.debugDescription)")
            }
            return policy
        }
    }

    /// `evictSlowFollowers` (default) or `minInSyncReplicas` (then `minInSyncReplicas` says n).
    public var policy: Policy = .evictSlowFollowers
    /// n for the `minInSyncReplicas` policy (default 1).
    public var minInSyncReplicas: Int = 1
    /// Each follower's outbound queue bound in bytes (default 64 MiB).
    public var queueBytes: Int = 64 * 1024 * 1024
    /// Each follower's outbound queue bound in frames (default 65,536).
    public var queueFrames: Int = 65_536
    /// The backlog of recent frames in bytes (default 256 MiB).
    public var backlogBytes: Int = 256 * 1024 * 1024
    /// Outstanding data with no ack for this long evicts (default 3).
    public var ackTimeoutSeconds: Double = 3
    /// Heartbeat on an idle link this often (default 0.5).
    public var heartbeatIntervalSeconds: Double = 0.5
    /// Evict a follower silent this long; a follower reconnects to a leader silent this long (default 6).
    public var heartbeatTimeoutSeconds: Double = 6
    /// A follower not caught up this long leaves the in-sync set (default 5).
    public var maxLagTimeSeconds: Double = 5
    /// A write or confirm that cannot satisfy the policy fails after this long (default 10).
    public var producerTimeoutSeconds: Double = 10
    /// `fsync` (default: acks mean durable) or `none` (acks mean applied).
    public var durability: ReplicationFollowerConfiguration.Durability = .fsync
    /// Seal a batch at this many record bytes (default 65,536).
    public var batchBytes: Int = 64 * 1024
    /// Seal a non-empty batch at least this often (default 0.002).
    public var flushIntervalSeconds: Double = 0.002
    /// Follower: give up a TCP connect to the leader after this long (default 3).
    public var connectTimeoutSeconds: Double = 3
    /// Follower: the first reconnect delay ceiling, doubled per failed attempt (default 0.1).
    public var reconnectBaseSeconds: Double = 0.1
    /// Follower: the largest reconnect delay ceiling; delays are drawn below it (default 5).
    public var reconnectCapSeconds: Double = 5
    /// Both roles: the most files kept open for writing (default 256): the leader's file
    /// writers, a follower's appends.
    public var maximumOpenFiles: Int = 256
    /// Leader: bytes per second for catch-up traffic (full syncs and resumes from the
    /// backlog) across all followers; absent (default): unlimited. At least 65,536.
    public var catchUpBytesPerSecond: Int?
    /// TLS (both roles): the PEM certificate chain this node presents; absent: see ``tls``.
    public var tlsCertificateFile: String?
    /// TLS (both roles): the PEM private key of `tlsCertificateFile`.
    public var tlsPrivateKeyFile: String?
    /// TLS (both roles): the PEM CA bundle the peer's certificate must chain to.
    public var tlsTrustedRootsFile: String?
    /// TLS (leader): require a follower certificate naming its node id (default false).
    public var tlsRequireClientCertificate: Bool = false

    /// A configuration with every value at its default.
    public init() {}

    /// Every key, for error messages and environment overrides.
    public static let keys = [
        "policy", "minInSyncReplicas", "queueBytes", "queueFrames", "backlogBytes", "ackTimeoutSeconds",
        "heartbeatIntervalSeconds", "heartbeatTimeoutSeconds", "maxLagTimeSeconds", "producerTimeoutSeconds",
        "durability", "batchBytes", "flushIntervalSeconds", "connectTimeoutSeconds", "reconnectBaseSeconds", "reconnectCapSeconds",
        "maximumOpenFiles", "catchUpBytesPerSecond", "tlsCertificateFile", "tlsPrivateKeyFile", "tlsTrustedRootsFile", "tlsRequireClientCertificate",
    ]

    /// The leader's policy these values name: `policy` with, for `minInSyncReplicas`, its n.
    public var replicationPolicy: ReplicationPolicy {
        switch policy {
        case .evictSlowFollowers: .evictSlowFollowers
        case .minInSyncReplicas: .minInSyncReplicas(minInSyncReplicas)
        }
    }

    /// Checks each value, and that every retry budget is shorter than the deadline it serves
    /// (the table above); the leader and follower configurations check the rest when these are
    /// applied to them.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   naming the first key out of range and the rule it breaks, e.g. `ackTimeoutSeconds`
    ///   not shorter than `producerTimeoutSeconds`.
    public func validate() throws(ReplicationError) {
        let invalid = ReplicationError.invalidSetting
        if minInSyncReplicas < 1 { throw invalid("minInSyncReplicas", "must be at least 1, got \(minInSyncReplicas)") }
        for (key, value) in [("queueBytes", queueBytes), ("queueFrames", queueFrames), ("backlogBytes", backlogBytes), ("batchBytes", batchBytes), ("maximumOpenFiles", maximumOpenFiles)] where value < 1 {
            throw invalid(key, "must be positive, got \(value)")
        }
        let durations = [
            ("ackTimeoutSeconds", ackTimeoutSeconds), ("heartbeatIntervalSeconds", heartbeatIntervalSeconds),
            ("heartbeatTimeoutSeconds", heartbeatTimeoutSeconds), ("maxLagTimeSeconds", maxLagTimeSeconds),
            ("producerTimeoutSeconds", producerTimeoutSeconds), ("flushIntervalSeconds", flushIntervalSeconds),
            ("connectTimeoutSeconds", connectTimeoutSeconds), ("reconnectBaseSeconds", reconnectBaseSeconds),
            ("reconnectCapSeconds", reconnectCapSeconds),
        ]
        for (key, value) in durations where !(value > 0 && value.isFinite) {
            throw invalid(key, "must be a positive number of seconds, got \(value)")
        }
        if let rate = catchUpBytesPerSecond, rate < 64 * 1024 {
            throw invalid("catchUpBytesPerSecond", "must be at least 65536 (64 KiB/s), or absent for unlimited, got \(rate)")
        }
        if reconnectBaseSeconds > reconnectCapSeconds {
            throw invalid("reconnectBaseSeconds", "must be at most reconnectCapSeconds (\(reconnectCapSeconds)), got \(reconnectBaseSeconds)")
        }
        try validateRetryBudgets()
        try validateTLS()
    }

    /// The leader's settings with these values applied.
    ///
    /// Sets `policy`, `queueBytes`, `queueFrames`, `backlogBytes`, `ackTimeout`,
    /// `heartbeatInterval`, `heartbeatTimeout`, `maxLagTime`, `producerTimeout`, `batchBytes`,
    /// `flushInterval`, `maximumOpenFiles`, `catchUpBytesPerSecond` and `tls`; the follower-only
    /// values are ignored.
    ///
    /// - Parameter leader: the configuration to change; its other values are left as they are.
    public func apply(to leader: inout ReplicationLeaderConfiguration) {
        leader.policy = replicationPolicy
        leader.queueBytes = queueBytes
        leader.queueFrames = queueFrames
        leader.backlogBytes = backlogBytes
        leader.ackTimeout = .seconds(ackTimeoutSeconds)
        leader.heartbeatInterval = .seconds(heartbeatIntervalSeconds)
        leader.heartbeatTimeout = .seconds(heartbeatTimeoutSeconds)
        leader.maxLagTime = .seconds(maxLagTimeSeconds)
        leader.producerTimeout = .seconds(producerTimeoutSeconds)
        leader.batchBytes = batchBytes
        leader.flushInterval = .seconds(flushIntervalSeconds)
        leader.maximumOpenFiles = maximumOpenFiles
        leader.catchUpBytesPerSecond = catchUpBytesPerSecond
        leader.tls = tls
    }

    /// The follower's settings with these values applied.
    ///
    /// Sets `durability`, `leaderSilenceTimeout` (from `heartbeatTimeoutSeconds`),
    /// `connectTimeout`, `reconnectBase`, `reconnectCap`, `maximumOpenFiles` and `tls`; the
    /// leader-only values are ignored.
    ///
    /// - Parameter follower: the configuration to change; its other values are left as they are.
    public func apply(to follower: inout ReplicationFollowerConfiguration) {
        follower.durability = durability
        follower.leaderSilenceTimeout = .seconds(heartbeatTimeoutSeconds)
        follower.connectTimeout = .seconds(connectTimeoutSeconds)
        follower.reconnectBase = .seconds(reconnectBaseSeconds)
        follower.reconnectCap = .seconds(reconnectCapSeconds)
        follower.maximumOpenFiles = maximumOpenFiles
        follower.tls = tls
    }
}
