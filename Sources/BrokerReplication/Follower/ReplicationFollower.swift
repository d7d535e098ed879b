import Logging
import NIOSSL
import ServiceLifecycle
import NIOCore
import NIOPosix
import Synchronization

/// The follower side: connects to the leader, resumes or full-syncs, applies every change in
/// LSN order to its own data directory, and acks the highest durable LSN.
///
/// ```swift
/// let follower = try ReplicationFollower(configuration: configuration, secret: secret)
/// try await follower.run()   // reconnects with capped, jittered backoff until cancelled
/// ```
public final class ReplicationFollower: Service, Sendable {
    /// The configuration this follower was created with; it passed
    /// ``ReplicationFollowerConfiguration/validate()``.
    public let configuration: ReplicationFollowerConfiguration
    let secret: SharedSecret
    /// The TLS context of ``ReplicationFollowerConfiguration/tls``, made once; nil: plaintext.
    let tlsContext: NIOSSLContext?
    let logger: Logger
    let directory: DataDirectory
    let stateFile: FollowerStateFile
    /// Chunk checksums of the follower's files, so a full sync reads only what it lacks.
    let chunkIndex: ChunkIndex
    /// Where its connection to the leader runs: the broker's own group, or SwiftNIO's singleton.
    let eventLoopGroup: any EventLoopGroup
    /// Moved by ``update(_:)`` and by the link's heartbeats, batches and group commits.
    let metrics: FollowerMetrics
    private let progress: Mutex<FollowerStatus>
    /// The subscribers of ``changes(bufferingNewest:)`` and the changes waiting to be durable.
    let changes = FollowerChanges()
    private let control = Mutex(RunControl())
    private let repeatedWarnings = RateLimitedLog()

    /// The follow loop of `run()`, so that `promote()` can stop it and wait for it.
    private struct RunControl {
        var loop: Task<Void, Never>?
        var promoted = false
        /// The streaming connection's committer, for a graceful shutdown's last commit.
        var committer: Committer?
    }

    func setActiveCommitter(_ committer: Committer?) {
        control.withLock { $0.committer = committer }
    }

    /// What a follower reports about itself.
    public struct FollowerStatus: Sendable, Codable, Equatable {
        /// What a follower's connection to its leader is doing; in JSON its raw value.
        ///
        /// `connecting`: a connection attempt and its handshake are under way. `syncing`: the
        /// leader could not resume the follower from its backlog and sends a full sync.
        /// `streaming`: the follower applies the leader's changes as they come.
        public enum Phase: String, Sendable, Codable { case connecting, syncing, streaming }
        /// What the current connection is doing (`connecting` before the first one).
        public var phase: Phase = .connecting
        /// The leader epoch of the follower's data (0: none yet).
        public var epoch: UInt64 = 0
        /// Every record up to this LSN is applied and durable here.
        public var lastDurableLSN: UInt64 = 0
        /// The last LSN acked to the leader: at most `lastDurableLSN`. After a graceful
        /// shutdown while streaming it equals `lastDurableLSN`: the batch being applied when
        /// the shutdown began is finished, made durable and acked too.
        public var lastAckedLSN: UInt64 = 0
        /// Connection attempts to the leader since this follower was created, failed ones too.
        public var connects = 0
        /// Full syncs the leader started sending to this follower, finished or not.
        public var fullSyncs = 0
        /// Connections on which the leader resumed this follower from its backlog, with no full sync.
        public var resumes = 0
        /// Group commits made durable so far: each is one device flush of the data directory's
        /// file system (plus one per replace, for its temporary file).
        public var groupCommits = 0
        /// The last reason a connection ended or was refused.
        public var lastError: String?
        /// The kind of ``lastError`` when it is one a broker may act on:
        /// ``ReplicationError/Code/handshakeRefused`` (a wrong secret, cluster id or version
        /// heals only once the configuration is fixed; a node id already connected, or a
        /// leader shutting down, may heal by itself), ``ReplicationError/Code/storage``
        /// (this follower's disk), ``ReplicationError/Code/protocolViolation`` (a corrupt or
        /// unexpected frame; the next connection resyncs). Nil for a connection that failed or
        /// ended (the leader unreachable or silent), and while nothing failed. Not in the JSON
        /// encoding, which stays as it was.
        public var lastErrorCode: ReplicationError.Code?

        private enum CodingKeys: String, CodingKey {
            case phase, epoch, lastDurableLSN, lastAckedLSN, connects, fullSyncs, resumes, groupCommits, lastError
        }
    }

    /// Opens (and creates) the follower's data directory and reads its stored position.
    ///
    /// It does not connect: ``run()`` does.
    ///
    /// - Parameters:
    ///   - configuration: where the leader is and how to follow it; it is validated first.
    ///   - secret: the cluster's shared secret, the same as the leader's.
    ///   - logger: where the follower logs; each line gets the `node` metadata key set to
    ///     ``ReplicationFollowerConfiguration/nodeID``.
    ///   - eventLoopGroup: where the connection to the leader runs (default: SwiftNIO's
    ///     `MultiThreadedEventLoopGroup.singleton`). A broker that runs its own group passes
    ///     it here; it must outlive ``run()``. File I/O still runs on SwiftNIO's shared thread pool.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   for an invalid configuration, ``ReplicationError/Code/storage`` when the data
    ///   directory or its state file cannot be used (the message names the file, the operation
    ///   and the errno).
    public init(
        configuration: ReplicationFollowerConfiguration,
        secret: SharedSecret,
        logger: Logger = Logger(label: "BrokerReplication.follower"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(ReplicationError) {
        try configuration.validate()
        self.eventLoopGroup = eventLoopGroup
        self.tlsContext = try configuration.tls.map { tls throws(ReplicationError) in try tls.makeClientContext() }
        self.configuration = configuration
        self.metrics = FollowerMetrics(configuration)
        self.secret = secret
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeID)"
        self.logger = logger
        do {
            self.directory = try DataDirectory(path: configuration.dataDirectory)
            self.stateFile = try FollowerStateFile(directory: directory)
            // What this directory held as a leader no longer describes it once it follows.
            try EpochHistoryFile(directory: directory).remove()
        } catch {
            throw ReplicationError(error)
        }
        let (entries, problem) = ChunkIndexFile(directory: directory).load()
        if let problem { logger.notice("chunk index unusable; files are read again at the next full sync", metadata: ["problem": "\(problem)"]) }
        self.chunkIndex = ChunkIndex(entries: entries)
        let position = stateFile.load()
        self.progress = Mutex(FollowerStatus(epoch: position.epoch, lastDurableLSN: position.lastDurableLSN))
    }

    /// A snapshot of where the follower stands.
    public func status() -> FollowerStatus { progress.withLock { $0 } }

    /// Follows the leader until the task is cancelled or ``promote(coordinator:force:)`` stops
    /// it, reconnecting after every failure.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/promotionRefused`` when
    ///   the follower was promoted, ``ReplicationError/Code/invalidConfiguration`` when it
    ///   already runs. A refused handshake or a lost connection does not end it: see
    ///   ``FollowerStatus/lastError`` and ``FollowerStatus/lastErrorCode``.
    public func run() async throws {
        let loop = try control.withLock { control throws(ReplicationError) -> Task<Void, Never> in
            if control.promoted { throw .promotionRefused("follower \"\(configuration.nodeID)\" was promoted and no longer follows") }
            if control.loop != nil { throw .invalidConfiguration("follower \"\(configuration.nodeID)\" is already running") }
            let loop = Task { await self.follow() }
            control.loop = loop
            return loop
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler { await loop.value } onGracefulShutdown: { self.shutdownGracefully() }
        } onCancel: {
            loop.cancel()
        }
        control.withLock { control in
            if control.loop == loop { control.loop = nil }
        }
        changes.finish()
    }

    /// Stops following gracefully: everything applied so far is made durable and acked, then
    /// the connection closes and `run()` returns. A `ServiceGroup` calls this through
    /// swift-service-lifecycle's graceful shutdown; cancelling `run()` stops at once (what was
    /// applied is still made durable, but not acked).
    public func shutdownGracefully() {
        let (loop, committer) = control.withLock { ($0.loop, $0.committer) }
        guard let loop else { return }
        Task {
            await committer?.finish()
            loop.cancel()
        }
    }

    private func follow() async {
        var backoff = ReconnectBackoff(base: configuration.reconnectBase, cap: configuration.reconnectCap, refusalDelay: configuration.refusalDelay)
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            update { $0.phase = .connecting; $0.connects += 1 }
            var refused = false
            let before = status()
            do {
                try await LeaderLink(follower: self).run()
            } catch let error as LeaderLink.Refused {
                refused = true
                record(error: error.description, code: Self.lastErrorCode(for: error))
                repeatedWarnings.log(
                    logger, .error, "leader refused this follower", key: "refused \(error.refusal.code)",
                    metadata: ["code": "\(error.refusal.code)", "reason": "\(error.refusal.reason)"]
                )
            } catch {
                // Only this task's own cancellation stops the follower; a CancellationError from
                // inside a connection that ended is just another failed connection.
                if Task.isCancelled { break }
                let described = TLSLink.describeFollowerFailure(error, tls: tlsContext != nil, leaderHost: configuration.leaderHost) ?? "\(error)"
                record(error: described, code: Self.lastErrorCode(for: error))
                repeatedWarnings.log(logger, .warning, "connection to the leader ended", key: "ended", metadata: ["error": "\(described)"])
            }
            if Task.isCancelled { break }
            // Only a connection that moved the follower forward restarts the backoff, so a
            // connection that fails right after its handshake cannot become a tight loop.
            let after = status()
            if after.lastDurableLSN != before.lastDurableLSN || after.epoch != before.epoch { backoff.reset() }
            let delay = backoff.nextDelay(afterRefusal: refused, using: &generator)
            try? await Task.sleep(for: delay)
        }
    }

    /// Claims the next epoch for this follower and stops following, so the broker can start a
    /// ``ReplicationLeader`` on the same data directory, which takes ``Promotion/epoch``.
    ///
    /// The check that this follower is in the in-sync set `coordinator` last persisted for its
    /// leader's epoch and the claim of the next epoch are one compare-and-set
    /// (``Coordinator/claimEpoch(_:)`` with ``EpochClaim/Requirement/inSync(dataEpoch:)``),
    /// made before the follower stops: two followers promoting at once cannot both succeed,
    /// and the old leader's next in-sync write is refused. In evict mode a member holds every
    /// confirmed write. Under `minInSyncReplicas(n)` a confirm needs only `n` members, so with
    /// more than `n` in sync promote the member with the highest
    /// ``FollowerStatus/lastDurableLSN``. `force: true` claims with
    /// ``EpochClaim/Requirement/newerEpoch`` instead, and may lose confirmed writes.
    ///
    /// - Parameters:
    ///   - coordinator: the coordinator the leader used; it must be reachable here.
    ///   - force: skip the in-sync check and promote anyway (default `false`); the result's
    ///     ``Promotion/forced`` records it.
    /// - Returns: the follower's last durable position and the epoch that the next
    ///   ``ReplicationLeader`` on this data directory takes.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/promotionRefused`` and
    ///   the reason (the follower keeps running then), ``ReplicationError/Code/coordination``
    ///   when the coordinator cannot be read or refuses the epoch (a broker's own
    ///   ``Coordinator`` may throw its own error instead), ``ReplicationError/Code/storage``
    ///   when the epoch cannot be stored locally.
    public func promote(coordinator: any Coordinator, force: Bool = false) async throws -> Promotion {
        let cluster = try await coordinator.load()
        let claimed = stateFile.load()
        if !force, let reason = PromotionCheck.refusal(nodeID: configuration.nodeID, position: claimed, cluster: cluster) {
            throw ReplicationError.promotionRefused(reason)
        }
        let epochFile: LeaderEpochFile
        let floor: UInt64
        do {
            epochFile = try LeaderEpochFile(directory: directory)
            floor = max(try epochFile.load(), claimed.epoch, cluster.epoch)
        } catch {
            throw ReplicationError(error)
        }
        try control.withLock { control throws(ReplicationError) in
            if control.promoted { throw .promotionRefused("follower \"\(configuration.nodeID)\" was already promoted") }
        }
        let claim = EpochClaim(epoch: floor + 1, nodeID: configuration.nodeID, requirement: force ? .newerEpoch : .inSync(dataEpoch: claimed.epoch))
        _ = try await coordinator.claimEpoch(claim)
        let loop = try control.withLock { control throws(ReplicationError) -> Task<Void, Never>? in
            if control.promoted { throw .promotionRefused("follower \"\(configuration.nodeID)\" was already promoted") }
            control.promoted = true
            return control.loop
        }
        // The connection commits what it applied before the loop ends, so the position read
        // next covers every record on disk.
        loop?.cancel()
        await loop?.value
        let position = stateFile.load()
        // Only a full sync, which starts by forgetting the position, can move it to another
        // epoch; the epoch is claimed by then, so the broker must not lead on these files.
        if position.epoch != claimed.epoch {
            control.withLock { $0.promoted = false; $0.loop = nil }
            throw ReplicationError.promotionRefused(
                "follower \"\(configuration.nodeID)\" claimed epoch \(claim.epoch), but a full sync began while it stopped: its files no longer hold epoch \(claimed.epoch); call run() to follow again"
            )
        }
        do {
            try epochFile.store(floor)
        } catch {
            throw ReplicationError(error)
        }
        let promotion = Promotion(previousEpoch: position.epoch, lastDurableLSN: position.lastDurableLSN, epoch: claim.epoch, forced: force)
        if position.epoch > 0 {
            // The files are exactly as of the promoted position: the other followers of that
            // epoch that hold the same position resume with the new leader, without a sync.
            do {
                let historyFile = EpochHistoryFile(directory: directory)
                var history = historyFile.load().history
                history.end(position.epoch, lastLSN: position.lastDurableLSN, filesDigest: EpochHistory.filesDigest(try directory.listFiles()))
                try historyFile.store(history)
            } catch {
                throw ReplicationError(error)
            }
        }
        logger.notice("follower promoted", metadata: [
            "previousEpoch": "\(promotion.previousEpoch)", "lastDurableLSN": "\(promotion.lastDurableLSN)",
            "nextEpoch": "\(promotion.epoch)", "forced": "\(force)",
        ])
        return promotion
    }

    func record(error: String, code: ReplicationError.Code? = nil) {
        progress.withLock { $0.lastError = error; $0.lastErrorCode = code }
    }

    /// The public code of why a connection ended, for ``FollowerStatus/lastErrorCode``.
    static func lastErrorCode(for error: any Error) -> ReplicationError.Code? {
        switch error {
        case let refused as LeaderLink.Refused:
            switch refused.refusal.code {
            case .diskError: .storage
            case .protocolViolation: .protocolViolation
            default: .handshakeRefused
            }
        case is StorageError: .storage
        case let error as ApplyError: if case .storage = error { .storage } else { .protocolViolation }
        case is WireError: .protocolViolation
        case let error as ReplicationError: error.code
        default: nil
        }
    }

    func update(_ body: @Sendable (inout FollowerStatus) -> Void) {
        let (before, after) = progress.withLock { status in
            let before = status
            body(&status)
            return (before, status)
        }
        metrics.statusChanged(from: before, to: after)
    }
}

/// Closes a connection on which the leader has said nothing for too long.
final class LeaderSilenceHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.fireErrorCaught(LeaderLink.LeaderSilent())
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
