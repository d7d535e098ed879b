import CoreMetrics
/// How a leader listens, batches, bounds its memory and judges its followers.
public struct ReplicationLeaderConfiguration: Sendable {
    /// The directory the broker's durable files live in; the leader owns writes to it.
    public var dataDirectory: String
    /// The address to listen on for followers. Keep it on a private network.
    public var host: String = "127.0.0.1"
    /// The port to listen on; 0 picks a free one (see ``ReplicationLeader/listeningPort()``).
    public var port: Int = 0
    /// Followers must name this cluster.
    public var clusterID: String
    /// This node's name in logs and handshakes.
    public var nodeID: String
    /// Seal a batch once its records reach this many bytes (default 64 KiB).
    public var batchBytes: Int = 64 * 1024
    /// Seal a non-empty batch at least this often (default 2 ms).
    public var flushInterval: Duration = .milliseconds(2)
    /// Each follower's outbound queue holds at most this many bytes (default 64 MiB).
    public var queueBytes: Int = 64 * 1024 * 1024
    /// Each follower's outbound queue holds at most this many frames (default 65,536).
    public var queueFrames: Int = 65_536
    /// The backlog of recent frames for resuming followers holds this many bytes (default 256 MiB).
    public var backlogBytes: Int = 256 * 1024 * 1024
    /// Outstanding data with no ack for this long evicts a follower (default 3 s).
    public var ackTimeout: Duration = .seconds(3)
    /// An idle link gets a heartbeat this often (default 500 ms).
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// Nothing heard from a follower for this long evicts it (default 6 s).
    public var heartbeatTimeout: Duration = .seconds(6)
    /// A connection that has not finished the handshake by then is closed (default 10 s).
    public var handshakeTimeout: Duration = .seconds(10)
    /// At most this many connections may be in their handshake at once (default 64); the
    /// leader closes further ones at once, so peers without the secret cannot make it hold
    /// more sockets than this. Authenticated followers do not count. While the cap is full a
    /// real follower may be closed too; it retries with its backoff.
    public var maximumHandshakingConnections: Int = 64
    /// At most this many files written through the leader keep a descriptor open (default
    /// 256); beyond it the least recently used ones that no write is using are closed and
    /// reopen on their next write. Writes in progress may exceed it by one file each.
    public var maximumOpenFiles: Int = 256
    /// Writes larger than this are replicated in chunks of this size (default 1 MiB), each
    /// with its own LSN, so a big write streams and is acked piece by piece.
    public var chunkBytes: Int = 1024 * 1024
    /// Each full sync opens at most this many files before its cut and holds them while it runs
    /// (default 64); it opens the others one at a time when it reaches them. A file among those
    /// others that is replaced or deleted after the cut, before the sync reaches it, ends the
    /// sync (`full-sync-failed`): the follower syncs again and keeps what it received.
    public var fullSyncOpenFiles: Int = 64
    /// A full sync gives up when it cannot take a consistent cut within this time (default 30 s).
    public var fullSyncCutTimeout: Duration = .seconds(30)
    /// Bytes per second that catch-up traffic, full syncs and resumes from the backlog, may
    /// use across all followers together (frame bytes, as they cross the network); nil, the
    /// default, is unlimited. A rejoining follower then cannot starve the live stream to the
    /// others; it may fall out of the backlog and sync again if the rate is below the write rate.
    public var catchUpBytesPerSecond: Int?
    /// Bounds on what followers may send; must match the followers' limits.
    public var wireLimits: WireLimits = .default
    /// What confirms wait for (default: every in-sync follower; producers never wait).
    public var policy: ReplicationPolicy = .evictSlowFollowers
    /// A follower not caught up for longer than this leaves the in-sync set (default 5 s). Keep
    /// it below `producerTimeout`: a confirm issued as a follower falls behind waits this long
    /// (plus storing the smaller set) before the laggard stops holding it up.
    public var maxLagTime: Duration = .seconds(5)
    /// A confirm that does not hold within this time throws `notEnoughReplicas` (default 10 s).
    public var producerTimeout: Duration = .seconds(10)
    /// Where the in-sync set is persisted; nil: a ``LocalCoordinator`` at
    /// `<dataDirectory>/.brpl/coordinator.json`.
    public var coordinator: (any Coordinator)?
    /// Where the leader's metrics go (Docs/Operations.md lists them); nil: the global
    /// `MetricsSystem.factory` that the broker bootstrapped.
    public var metricsFactory: (any MetricsFactory)?
    /// How often gauges (lags, queue depths, ISR size, backlog) are refreshed.
    public var metricsInterval: Duration = .milliseconds(500)
    /// On a graceful shutdown, how long the leader waits for in-sync followers to ack
    /// everything before it closes their connections.
    public var shutdownTimeout: Duration = .seconds(5)
    /// TLS on the replication port; nil (the default): plaintext. With
    /// ``ReplicationTLS/requireClientCertificate`` every follower must present a certificate
    /// that names its node id (``ReplicationTLS/nodeIdentityRule``). The files are read when
    /// the leader is created.
    public var tls: ReplicationTLS?

    /// A configuration with the given identity and data directory; every other value has its default.
    ///
    /// - Parameters:
    ///   - dataDirectory: the directory the broker's durable files live in; the leader creates
    ///     it when missing (not its parent).
    ///   - clusterID: the cluster's name; followers must name the same one.
    ///   - nodeID: this node's name in logs and handshakes.
    public init(dataDirectory: String, clusterID: String, nodeID: String) {
        self.dataDirectory = dataDirectory
        self.clusterID = clusterID
        self.nodeID = nodeID
    }

    /// Checks every value and names the first one that is out of range.
    ///
    /// ``ReplicationLeader/init(configuration:secret:logger:)`` calls it.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   naming the key and the rule it breaks, e.g. `clusterID` or `nodeID` not 1...255 bytes
    ///   of UTF-8, `batchBytes + chunkBytes` plus 16 KiB above `wireLimits.maximumBatchBytes`,
    ///   `queueBytes` too small for two chunks, `backlogBytes` below `queueBytes`, or
    ///   `heartbeatInterval` not shorter than `heartbeatTimeout`.
    public func validate() throws(ReplicationError) {
        let invalid = ReplicationError.invalidSetting
        try ReplicationError.checkIdentifiers(clusterID: clusterID, nodeID: nodeID)
        if !(0...65535).contains(port) { throw invalid("port", "must be 0...65535") }
        if batchBytes < 1 { throw invalid("batchBytes", "must be at least 1") }
        if chunkBytes < 1024 { throw invalid("chunkBytes", "must be at least 1024") }
        if batchBytes + chunkBytes + 16 * 1024 > wireLimits.maximumBatchBytes {
            throw invalid("batchBytes", "batchBytes + chunkBytes + 16 KiB must fit wireLimits.maximumBatchBytes (\(wireLimits.maximumBatchBytes) bytes)")
        }
        if queueBytes < 2 * (chunkBytes + 64 * 1024) { throw invalid("queueBytes", "must hold at least two full chunks (\(2 * (chunkBytes + 64 * 1024)) bytes)") }
        if queueFrames < 2 { throw invalid("queueFrames", "must be at least 2") }
        if backlogBytes < queueBytes { throw invalid("backlogBytes", "must be at least queueBytes (\(queueBytes) bytes)") }
        if maximumHandshakingConnections < 1 { throw invalid("maximumHandshakingConnections", "must be at least 1") }
        if let rate = catchUpBytesPerSecond, rate < 64 * 1024 { throw invalid("catchUpBytesPerSecond", "must be at least 65536 (64 KiB/s), or unset for unlimited") }
        if maximumOpenFiles < 1 { throw invalid("maximumOpenFiles", "must be at least 1") }
        if fullSyncOpenFiles < 1 { throw invalid("fullSyncOpenFiles", "must be at least 1") }
        if ackTimeout <= .zero { throw invalid("ackTimeout", "must be positive") }
        if heartbeatInterval <= .zero || heartbeatInterval >= heartbeatTimeout {
            throw invalid("heartbeatInterval", "must be positive and shorter than heartbeatTimeout")
        }
        if flushInterval <= .zero { throw invalid("flushInterval", "must be positive") }
        if case .minInSyncReplicas(let n) = policy, n < 1 { throw invalid("policy", "minInSyncReplicas needs at least 1, got \(n)") }
        if maxLagTime <= .zero { throw invalid("maxLagTime", "must be positive") }
        if producerTimeout <= .zero { throw invalid("producerTimeout", "must be positive") }
    }
}
