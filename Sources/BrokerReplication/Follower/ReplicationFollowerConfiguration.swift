import CoreMetrics

/// Where a follower's leader is, and how it applies and reconnects.
public struct ReplicationFollowerConfiguration: Sendable {
    /// Whether acks wait for fsync.
    public enum Durability: String, Sendable, Codable {
        /// An ack means applied and fsynced (the default; Docs/Semantics.md, "Acks mean durable").
        case fsync
        /// An ack means applied to the page cache only: faster, lost on a power cut.
        case none
    }

    /// The follower's own copy of the data directory.
    public var dataDirectory: String
    /// The leader's host name or IP address.
    public var leaderHost: String
    /// The port the leader listens on for followers (1...65535).
    public var leaderPort: Int
    /// The cluster to join: the leader refuses a follower whose cluster id differs from its own
    /// (1...255 bytes of UTF-8).
    public var clusterID: String
    /// This follower's name; the leader knows it by this.
    public var nodeID: String
    /// What an ack to the leader promises (default ``Durability/fsync``).
    public var durability: Durability = .fsync
    /// No frame from the leader for this long (it sends heartbeats when idle) ends the connection (default 6 s).
    public var leaderSilenceTimeout: Duration = .seconds(6)
    /// Giving up on a TCP connect after this long (default 3 s).
    public var connectTimeout: Duration = .seconds(3)
    /// First reconnect delay ceiling; doubles per failed attempt up to `reconnectCap` (default 100 ms).
    public var reconnectBase: Duration = .milliseconds(100)
    /// Largest reconnect delay (default 5 s). Delays are drawn uniformly below the ceiling (full jitter).
    public var reconnectCap: Duration = .seconds(5)
    /// Wait at least this long after the leader refused the handshake (default 5 s).
    public var refusalDelay: Duration = .seconds(5)
    /// At most this many files keep a descriptor open for appends (default 256); beyond it the
    /// least recently used ones are closed and reopen on their next append.
    public var maximumOpenFiles: Int = 256
    /// Must match the leader's limits.
    public var wireLimits: WireLimits = .default
    /// TLS to the leader; nil (the default): plaintext. Must match the leader: it needs at
    /// least ``ReplicationTLS/trustedRootsFile``, and a certificate naming ``nodeID`` when the
    /// leader requires client certificates. The files are read when the follower is created.
    public var tls: ReplicationTLS?
    /// Where the follower's metrics go (Docs/Operations.md lists them); nil: the global
    /// `MetricsSystem.factory` that the broker bootstrapped.
    public var metricsFactory: (any MetricsFactory)?

    /// A configuration with the given identity and leader address; every other value has its default.
    ///
    /// - Parameters:
    ///   - dataDirectory: the follower's own copy of the data directory; the follower creates
    ///     it when missing (not its parent).
    ///   - leaderHost: the leader's host name or IP address.
    ///   - leaderPort: the port the leader listens on for followers.
    ///   - clusterID: the cluster to join; must equal the leader's.
    ///   - nodeID: this follower's name, unique in the cluster.
    public init(dataDirectory: String, leaderHost: String, leaderPort: Int, clusterID: String, nodeID: String) {
        self.dataDirectory = dataDirectory
        self.leaderHost = leaderHost
        self.leaderPort = leaderPort
        self.clusterID = clusterID
        self.nodeID = nodeID
    }

    /// Checks every value and names the first one that is out of range.
    ///
    /// ``ReplicationFollower/init(configuration:secret:logger:)`` calls it.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   naming the key and the rule: `clusterID` or `nodeID` not 1...255 bytes of UTF-8,
    ///   `leaderPort` not 1...65535, `reconnectBase` not positive or above `reconnectCap`,
    ///   `leaderSilenceTimeout` not positive, `maximumOpenFiles` below 1.
    public func validate() throws(ReplicationError) {
        let invalid = ReplicationError.invalidSetting
        try ReplicationError.checkIdentifiers(clusterID: clusterID, nodeID: nodeID)
        if !(1...65535).contains(leaderPort) { throw invalid("leaderPort", "must be 1...65535") }
        if reconnectBase <= .zero || reconnectCap < reconnectBase { throw invalid("reconnectBase", "must be positive and at most reconnectCap") }
        if leaderSilenceTimeout <= .zero { throw invalid("leaderSilenceTimeout", "must be positive") }
        if maximumOpenFiles < 1 { throw invalid("maximumOpenFiles", "must be at least 1, got \(maximumOpenFiles)") }
    }
}
