import CoreMetrics
import ServiceLifecycle
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The leader side of replication: the broker writes its durable files through it, and it
/// streams every change to the connected followers.
///
/// Each write happens locally and gets its LSN in one step, so the leader always knows every
/// file's size at every LSN (see "Why writes go through the module" in the architecture
/// brief). Producers never wait for followers: a follower that falls too far behind is
/// evicted and catches up when it reconnects.
///
/// ```swift
/// let leader = try ReplicationLeader(configuration: configuration, secret: secret)
/// async let serving: Void = leader.run()
/// let lsn = try await leader.append(to: "queues/orders/segment.1", bytes: message)
/// ```
public final class ReplicationLeader: Service, Sendable {
    public let configuration: ReplicationLeaderConfiguration
    /// This leader's epoch: one more than the previous leader of this data directory.
    public let epoch: UInt64
    let secret: SharedSecret
    let logger: Logger
    let directory: DataDirectory
    let core: LeaderCore
    let coordinator: any Coordinator
    let metrics: LeaderMetrics
    let repeatedWarnings = RateLimitedLog()
    private let listening: Mutex<ListenState> = Mutex(ListenState())
    private let connections: Mutex<OpenConnections>
    private let shutdown = Mutex(ShutdownState())

    private struct ShutdownState {
        var requests: AsyncStream<Void>.Continuation?
    }

    private struct ListenState {
        var port: Int?
        var failure: (any Error)?
        var waiters: [CheckedContinuation<Int, any Error>] = []
    }

    /// Opens the data directory, registers the files already in it, and takes the next epoch.
    ///
    /// - Throws: ``ReplicationError`` for an invalid configuration, ``StorageError`` when the
    ///   data directory cannot be used.
    public init(configuration: ReplicationLeaderConfiguration, secret: SharedSecret, logger: Logger = Logger(label: "BrokerReplication.leader")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.secret = secret
        self.connections = Mutex(OpenConnections(maximumHandshaking: configuration.maximumHandshakingConnections))
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeID)"
        self.logger = logger
        let directory = try DataDirectory(path: configuration.dataDirectory)
        self.directory = directory
        self.epoch = try Self.takeNextEpoch(in: directory)
        let files = try directory.listFiles()
        let settings = LeaderCore.Settings(
            epoch: epoch, batchBytes: configuration.batchBytes, queueBytes: configuration.queueBytes,
            queueFrames: configuration.queueFrames, backlogBytes: configuration.backlogBytes,
            policy: configuration.policy, maxLagTime: configuration.maxLagTime, maximumOpenFiles: configuration.maximumOpenFiles
        )
        self.coordinator = configuration.coordinator
            ?? LocalCoordinator(path: configuration.dataDirectory + "/" + DataDirectory.reservedDirectory + "/coordinator.json")
        let evictionLogger = logger
        let metrics = LeaderMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
        self.metrics = metrics
        self.core = LeaderCore(settings: settings, files: files) { session, reason, detail in
            metrics.evicted(session.nodeID, reason: reason)
            evictionLogger.warning(
                "follower evicted",
                metadata: ["follower": "\(session.nodeID)", "address": "\(session.remoteAddress)", "reason": "\(reason)", "detail": "\(detail)"]
            )
        }
        logger.info("leader ready", metadata: ["epoch": "\(epoch)", "files": "\(files.count)", "dataDirectory": "\(configuration.dataDirectory)"])
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
    /// - Throws: ``ReplicationError`` with ``ReplicationError/isNotEnoughReplicas`` after
    ///   `producerTimeout`; the change stays on the leader either way.
    public func waitForReplication(upTo lsn: UInt64) async throws {
        try await waitForReplication(upTo: lsn, timeout: configuration.producerTimeout)
    }

    /// Waits like ``waitForReplication(upTo:)``, with a deadline of this call's own.
    public func waitForReplication(upTo lsn: UInt64, timeout: Duration) async throws {
        let start = ContinuousClock.now
        try await core.waitForReplication(upTo: lsn, timeout: timeout)
        metrics.confirmed(after: ContinuousClock.now - start)
    }

    // MARK: Serving

    /// The port the leader listens on, once ``run()`` has bound it.
    public func listeningPort() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready = listening.withLock { state -> Result<Int, any Error>? in
                if let port = state.port { return .success(port) }
                if let failure = state.failure { return .failure(failure) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func finishListening(_ result: Result<Int, any Error>) {
        let waiters = listening.withLock { state in
            switch result {
            case .success(let port): state.port = port
            case .failure(let error): state.failure = error
            }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// Listens for followers and serves them until the task is cancelled.
    public func run() async throws {
        let limits = configuration.wireLimits
        let server: NIOAsyncChannel<NIOAsyncChannel<Frame, ByteBuffer>, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try TCPKeepalive.configure(channel)
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits, preamble: .expected)))
                        try channel.pipeline.syncOperations.addHandler(LivenessTap(limits: limits))
                        return try NIOAsyncChannel<Frame, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            finishListening(.failure(error))
            throw error
        }
        let port = server.channel.localAddress?.port ?? configuration.port
        do {
            _ = try await coordinator.claimEpoch(after: epoch - 1)
        } catch {
            try? await server.channel.close()
            finishListening(.failure(error))
            throw error
        }
        core.startGating()
        logger.info(
            "leader listening",
            metadata: ["address": "\(configuration.host):\(port)", "epoch": "\(epoch)", "policy": "\(configuration.policy)"]
        )
        finishListening(.success(port))

        // The accept loop runs in its own task and ends when the server channel closes, not on
        // cancellation: a cancelled iterator would drop connections NIO has already accepted,
        // and every accepted connection must run through executeThenClose.
        let accepting = Task {
            await withDiscardingTaskGroup { group in
                try? await server.executeThenClose { accepted in
                    for try await connection in accepted {
                        group.addTask { await LeaderConnection(leader: self, connection: connection).serve() }
                    }
                }
            }
        }
        let shutdownRequests = AsyncStream<Void>.makeStream()
        shutdown.withLock { $0.requests = shutdownRequests.continuation }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.runFlushTick() }
                    group.addTask { await self.runInSyncTick() }
                    group.addTask { await self.runMetricsTick() }
                    group.addTask {
                        // Ends with the first request, or when the stream finishes below.
                        for await _ in shutdownRequests.stream {
                            await self.drainBeforeClosing()
                            server.channel.close(promise: nil)
                            self.closeAllConnections()
                            break
                        }
                    }
                    await accepting.value
                    shutdownRequests.continuation.finish()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                self.shutdownGracefully()
            }
        } onCancel: {
            server.channel.close(promise: nil)
            closeAllConnections()
        }
        logger.info("leader stopped", metadata: ["epoch": "\(epoch)"])
    }

    /// Stops the leader gracefully: it seals the open batch, waits up to `shutdownTimeout` for
    /// every connected follower to ack the last LSN, then closes. `run()` returns afterwards.
    /// A `ServiceGroup` calls this through swift-service-lifecycle's graceful shutdown;
    /// cancelling `run()` instead stops at once.
    public func shutdownGracefully() {
        shutdown.withLock { $0.requests }?.yield()
    }

    /// Seals and waits for the connected followers to hold everything (bounded).
    private func drainBeforeClosing() async {
        core.sealOpenBatch()
        let last = core.lastAssignedLSN
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        func behind() -> [String] {
            status().followers.filter { $0.state != "closed" && $0.ackedLSN < last }.map(\.nodeID)
        }
        logger.info("leader shutting down; waiting for followers to ack", metadata: ["lastLSN": "\(last)", "timeout": "\(configuration.shutdownTimeout)"])
        while !behind().isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let missing = behind()
        if !missing.isEmpty {
            logger.warning("followers had not acked everything at shutdown", metadata: ["followers": "\(missing)", "lastLSN": "\(last)"])
        }
    }

    /// Registers an accepted connection, unless the leader is stopping or the handshake cap is full.
    func track(_ channel: any Channel) -> OpenConnections.Admission {
        connections.withLock { $0.accept(channel) }
    }

    /// The connection authenticated: it no longer counts against `maximumHandshakingConnections`.
    func finishedHandshake(_ channel: any Channel) {
        connections.withLock { $0.finishedHandshake(channel) }
    }

    /// Connections accepted and not yet closed (handshaking or streaming).
    package var openConnectionCount: Int { connections.withLock { $0.channels.count } }

    /// Connections accepted and not yet authenticated (at most `maximumHandshakingConnections`).
    package var handshakingConnectionCount: Int { connections.withLock { $0.handshaking.count } }

    func untrack(_ channel: any Channel) {
        connections.withLock { $0.remove(channel) }
    }

    private func closeAllConnections() {
        for channel in connections.withLock({ $0.stop() }) { channel.close(promise: nil) }
    }

    /// Every 20 ms: lagging followers leave the in-sync set and caught-up ones join, the change
    /// is persisted through the coordinator before confirms rely on it (Docs/Semantics.md, "In-sync replicas and confirms"), and
    /// confirms past `producerTimeout` fail.
    private func runInSyncTick() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
            guard let change = core.tick() else { continue }
            let before = core.inSyncSnapshot.members
            do {
                try await coordinator.storeInSyncReplicas(change.sorted(), epoch: epoch)
                core.inSyncPersisted(change)
                logger.info(
                    "in-sync replicas changed",
                    metadata: [
                        "isr": "\(change.sorted())", "joined": "\(change.subtracting(before).sorted())",
                        "left": "\(Set(before).subtracting(change).sorted())",
                    ]
                )
            } catch {
                core.inSyncPersisted(nil)
                repeatedWarnings.log(logger, .error, "cannot persist the in-sync replicas; confirms keep the previous set", key: "persist", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Refreshes the gauges every `metricsInterval`.
    private func runMetricsTick() async {
        while !Task.isCancelled {
            metrics.sample(status())
            try? await Task.sleep(for: configuration.metricsInterval)
        }
    }

    /// Seals a non-empty batch every `flushInterval`, so a quiet producer's write is not held back.
    private func runFlushTick() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.flushInterval)
            core.sealOpenBatch()
        }
    }
}
