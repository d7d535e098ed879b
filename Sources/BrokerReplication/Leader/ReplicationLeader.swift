import CoreMetrics
import Foundation
import ServiceLifecycle
import Logging
import NIOSSL
import NIOCore
import NIOPosix

/// The leader side of replication: the broker writes its durable files through it, and it
/// streams every change to the connected followers.
///
/// Each write happens locally and gets its LSN in one step, so the leader always knows every
/// file's size at every LSN (Docs/Architecture.md, "Why writes go through the module").
/// Producers never wait for followers: a follower that falls too far behind is
/// evicted and catches up when it reconnects.
///
/// ```swift
/// let leader = try ReplicationLeader(configuration: configuration, secret: secret)
/// async let serving: Void = leader.run()
/// let lsn = try await leader.append(to: "queues/orders/segment.1", bytes: message)
/// ```
public final class ReplicationLeader: Service, Sendable {
    /// The configuration this leader was created with; it passed
    /// ``ReplicationLeaderConfiguration/validate()``.
    public let configuration: ReplicationLeaderConfiguration
    /// This leader's epoch: one more than the previous leader of this data directory.
    public let epoch: UInt64
    let secret: SharedSecret
    /// The TLS context of ``ReplicationLeaderConfiguration/tls``, made once; nil: plaintext.
    let tlsContext: NIOSSLContext?
    let logger: Logger
    let directory: DataDirectory
    let core: LeaderCore
    let coordinator: any Coordinator
    let metrics: LeaderMetrics
    /// Chunk checksums of the leader's files, for full-sync manifests.
    let chunkIndex: ChunkIndex
    /// Paces full syncs and resumes from the backlog (`catchUpBytesPerSecond`).
    let catchUpLimiter: CatchUpRateLimiter
    let repeatedWarnings = RateLimitedLog()
    /// Whether it listens, and the connections it has open.
    let lifecycle: LeaderLifecycle
    /// Where its connections run: the broker's own group, or SwiftNIO's shared singleton.
    let eventLoopGroup: any EventLoopGroup
    /// The subscribers of ``events(bufferingNewest:)``.
    let events = LeaderEvents()

    /// Opens the data directory, registers the files already in it, and takes the next epoch.
    ///
    /// The epoch is stored durably in the data directory here; ``run()`` claims it from the
    /// coordinator before it serves followers.
    ///
    /// - Parameters:
    ///   - configuration: where the data directory is, how to listen and how to treat
    ///     followers; it is validated first.
    ///   - secret: the cluster's shared secret; followers must hold the same one.
    ///   - logger: where the leader logs; each line gets the `node` metadata key set to
    ///     ``ReplicationLeaderConfiguration/nodeID``.
    ///   - eventLoopGroup: where the listening socket and the followers' connections run
    ///     (default: SwiftNIO's `MultiThreadedEventLoopGroup.singleton`). A broker that runs
    ///     its own group passes it here; it must outlive ``run()``. File I/O still runs on
    ///     SwiftNIO's shared thread pool.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   for an invalid configuration, ``ReplicationError/Code/storage`` when the data
    ///   directory cannot be used (the message names the file, the operation and the errno).
    public init(
        configuration: ReplicationLeaderConfiguration,
        secret: SharedSecret,
        logger: Logger = Logger(label: "BrokerReplication.leader"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(ReplicationError) {
        try configuration.validate()
        self.eventLoopGroup = eventLoopGroup
        self.tlsContext = try configuration.tls.map { tls throws(ReplicationError) in try tls.makeServerContext() }
        self.configuration = configuration
        self.secret = secret
        self.lifecycle = LeaderLifecycle(maximumHandshakingConnections: configuration.maximumHandshakingConnections)
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeID)"
        self.logger = logger
        let opened = try Self.open(configuration.dataDirectory, logger: logger)
        let (directory, epoch, files) = (opened.directory, opened.epoch, opened.files)
        self.directory = directory
        self.epoch = epoch
        self.chunkIndex = opened.chunkIndex
        self.catchUpLimiter = CatchUpRateLimiter(bytesPerSecond: configuration.catchUpBytesPerSecond)
        let settings = LeaderCore.Settings(
            epoch: epoch, batchBytes: configuration.batchBytes, queueBytes: configuration.queueBytes,
            queueFrames: configuration.queueFrames, backlogBytes: configuration.backlogBytes,
            policy: configuration.policy, maxLagTime: configuration.maxLagTime, maximumOpenFiles: configuration.maximumOpenFiles,
            history: opened.history
        )
        self.coordinator = configuration.coordinator
            ?? LocalCoordinator(path: configuration.dataDirectory + "/" + DataDirectory.reservedDirectory + "/coordinator.json")
        let evictionLogger = logger
        let metrics = LeaderMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory, policy: configuration.policy)
        self.metrics = metrics
        let events = self.events
        self.core = LeaderCore(settings: settings, files: files) { session, reason, detail in
            metrics.evicted(session.nodeID, reason: reason)
            events.publish(.evicted(LeaderStatus.Eviction(nodeID: session.nodeID, reason: reason, detail: detail, at: Date())))
            evictionLogger.warning(
                "follower evicted",
                metadata: ["follower": "\(session.nodeID)", "address": "\(session.remoteAddress)", "reason": "\(reason)", "detail": "\(detail)"]
            )
        }
        logger.info("leader ready", metadata: ["epoch": "\(epoch)", "files": "\(files.count)", "dataDirectory": "\(configuration.dataDirectory)"])
    }

    private struct Opened {
        var directory: DataDirectory
        var epoch: UInt64
        var files: [(path: ReplicatedPath, size: Int)]
        var history: EpochHistory
        var chunkIndex: ChunkIndex
    }

    /// Opens the data directory, takes the next epoch, begins it in the epoch history, lists the
    /// files already there and loads their chunk index.
    private static func open(_ path: String, logger: Logger) throws(ReplicationError) -> Opened {
        do {
            let directory = try DataDirectory(path: path)
            let epoch = try takeNextEpoch(in: directory)
            let files = try directory.listFiles()
            let historyFile = EpochHistoryFile(directory: directory)
            var (history, problem) = historyFile.load()
            if let problem { logger.warning("epoch history unusable", metadata: ["problem": "\(problem)"]) }
            if !history.checkLastEnd(againstFilesDigest: EpochHistory.filesDigest(files)) {
                logger.notice("the files changed after the last epoch ended; its followers get a full sync")
            }
            history.begin(epoch)
            try historyFile.store(history)
            let (entries, indexProblem) = ChunkIndexFile(directory: directory).load()
            if let indexProblem { logger.notice("chunk index unusable; files are read again", metadata: ["problem": "\(indexProblem)"]) }
            return Opened(directory: directory, epoch: epoch, files: files, history: history, chunkIndex: ChunkIndex(entries: entries))
        } catch {
            throw ReplicationError(error)
        }
    }

    /// Records this epoch's clean end in the epoch history: the files, flushed, are exactly as
    /// of the last LSN, so a follower holding that LSN can resume with the next leader.
    func recordEpochEnd() {
        guard let (lastLSN, files) = core.filesAtLastLSN() else {
            logger.notice("a replace or delete was under way at the stop; the epoch's end is not recorded")
            return
        }
        do {
            try directory.syncFileSystem()
            var history = EpochHistoryFile(directory: directory).load().history
            history.end(epoch, lastLSN: lastLSN, filesDigest: EpochHistory.filesDigest(files))
            try EpochHistoryFile(directory: directory).store(history)
            try ChunkIndexFile(directory: directory).store(chunkIndex.snapshot)
            logger.info("epoch ended", metadata: ["epoch": "\(epoch)", "lastLSN": "\(lastLSN)"])
        } catch {
            logger.warning("cannot record the epoch's end; its followers get a full sync from the next leader", metadata: ["error": "\(error)"])
        }
    }

    /// Reads the last epoch from `.brpl/leader-epoch`, adds one, and stores it durably first.
    private static func takeNextEpoch(in directory: DataDirectory) throws(StorageError) -> UInt64 {
        let file = try LeaderEpochFile(directory: directory)
        let next = try file.load() + 1
        try file.store(next)
        return next
    }

    // MARK: Writing

    /// Seals the open batch now instead of at the next flush tick.
    public func flush() {
        core.sealOpenBatch()
    }

    /// The last LSN given to a change (0 before the first).
    public var lastLSN: UInt64 { core.lastAssignedLSN }

    /// Waits until the policy holds for every change up to `lsn`, like a publisher confirm.
    ///
    /// In evict mode: every follower in the persisted in-sync set has acked `lsn` durably (a
    /// follower that left counts once its removal is persisted). In min-ISR(n) mode: `n`
    /// in-sync followers have. Before ``run()`` listens, it returns at once.
    ///
    /// - Parameter lsn: the LSN a write returned; the wait covers every change up to it.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/notEnoughReplicas``
    ///   (``ReplicationError/isNotEnoughReplicas``) after `producerTimeout`; the change stays
    ///   on the leader either way.
    public func waitForReplication(upTo lsn: UInt64) async throws {
        try await waitForReplication(upTo: lsn, timeout: configuration.producerTimeout)
    }

    /// Waits like ``waitForReplication(upTo:)``, with a deadline of this call's own.
    ///
    /// - Parameters:
    ///   - lsn: the LSN a write returned; the wait covers every change up to it.
    ///   - timeout: how long to wait before failing, instead of `producerTimeout`.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/notEnoughReplicas``
    ///   after `timeout`; the change stays on the leader either way.
    public func waitForReplication(upTo lsn: UInt64, timeout: Duration) async throws {
        let start = ContinuousClock.now
        try await core.waitForReplication(upTo: lsn, timeout: timeout)
        metrics.confirmed(after: ContinuousClock.now - start)
    }

    /// Stops confirming because this node no longer leads: every waiting confirm and every
    /// later one fails with ``ReplicationError/Code/notLeader`` and `reason`, and so does every
    /// later write. Writes already made stay in the files, unconfirmed; the next leader's
    /// followers drop them if they were not replicated. It does not stop ``run()``: a broker
    /// (or ``ClusterNode``) then shuts the leader down.
    ///
    /// Call it as soon as leadership is in doubt (a lease about to expire, a lost election):
    /// a confirm given after another leader was elected could be lost in a failover.
    ///
    /// - Parameter reason: why, as confirms will report it, e.g. "the etcd lease expired".
    public func stepDown(reason: String) {
        guard core.steppedDown == nil else { return }
        core.stepDown(reason: reason)
        logger.warning("leader stepped down; confirms fail from now on", metadata: ["reason": "\(reason)", "epoch": "\(epoch)"])
    }

    // MARK: Serving

    /// The port the leader listens on, once ``run()`` has bound it.
    ///
    /// - Throws: what ``run()`` threw when it could not listen: ``ReplicationError`` with
    ///   code ``ReplicationError/Code/invalidConfiguration`` when the address cannot be bound
    ///   (a port in use, an address not on this host), or, when the coordinator refused the
    ///   epoch, ``ReplicationError`` with code
    ///   ``ReplicationError/Code/coordination`` (a broker's own ``Coordinator`` may throw its
    ///   own error instead).
    public func listeningPort() async throws -> Int {
        try await lifecycle.port()
    }

    /// Listens for followers and serves them until the task is cancelled or a graceful
    /// shutdown finishes.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   when the address cannot be bound (a port in use, an address not on this host), naming
    ///   the address and the system's reason; ``ReplicationError`` with code ``ReplicationError/Code/coordination``
    ///   when the coordinator refuses this leader's epoch (another leader claimed a newer one)
    ///   or cannot store it (a broker's own ``Coordinator`` may throw its own error instead).
    ///   Once it listens, it returns without throwing.
    public func run() async throws {
        // Whichever way it ends, the event streams end with it.
        defer { events.finish() }
        try await LeaderServer(leader: self).run()
    }

    /// Stops the leader gracefully: it seals the open batch, waits up to `shutdownTimeout` for
    /// every connected follower to ack the last LSN, then closes. `run()` returns afterwards.
    /// A `ServiceGroup` calls this through swift-service-lifecycle's graceful shutdown;
    /// cancelling `run()` instead stops at once.
    public func shutdownGracefully() {
        lifecycle.requestShutdown()
    }

    /// Connections accepted and not yet closed (handshaking or streaming).
    var openConnectionCount: Int { lifecycle.openConnectionCount }

    /// Connections accepted and not yet authenticated (at most `maximumHandshakingConnections`).
    var handshakingConnectionCount: Int { lifecycle.handshakingConnectionCount }
}
