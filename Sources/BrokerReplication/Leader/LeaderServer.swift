import NIOCore
import NIOSSL
import NIOPosix
import ServiceLifecycle

/// What ``ReplicationLeader/run()`` does: listen and accept followers, run the leader's
/// periodic work (the flush, in-sync and metrics ticks), and stop gracefully or at once.
///
/// Each accepted connection is served by its own ``FollowerLink``; the leader's state is
/// reached only through ``LeaderCore``, the lifecycle and open connections only through
/// ``LeaderLifecycle``.
struct LeaderServer {
    let leader: ReplicationLeader

    /// Listens for followers and serves them until the task is cancelled.
    func run() async throws {
        let limits = leader.configuration.wireLimits
        let tlsContext = leader.tlsContext
        let server: NIOAsyncChannel<NIOAsyncChannel<WireMessage, ByteBuffer>, Never>
        do {
            server = try await ServerBootstrap(group: leader.eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: leader.configuration.host, port: leader.configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try TCPKeepalive.configure(channel)
                        if let tlsContext {
                            try TLSLink.addServerHandlers(tlsContext, to: channel) { address in
                                leader.repeatedWarnings.log(
                                    leader.logger, .warning, "follower refused in TLS", key: "plaintext \(address)",
                                    metadata: ["address": "\(address)", "error": "\(PlaintextFollower())"]
                                )
                            }
                        }
                        // TLS authenticates every byte; without it, every frame carries a tag.
                        let authenticatesFrames = tlsContext == nil
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(limits: limits, preamble: .expected, authenticatesFrames: authenticatesFrames))
                        )
                        if authenticatesFrames { try channel.pipeline.syncOperations.addHandler(FrameAuthenticationHandler(side: .leader)) }
                        try channel.pipeline.syncOperations.addHandler(WireMessageDecoder(limits: limits))
                        try channel.pipeline.syncOperations.addHandler(LivenessHandler())
                        return try NIOAsyncChannel<WireMessage, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            let refused = ReplicationError.invalidConfiguration(
                "cannot listen on \(leader.configuration.host):\(leader.configuration.port): \(error)"
            )
            leader.lifecycle.failed(refused)
            throw refused
        }
        let port = server.channel.localAddress?.port ?? leader.configuration.port
        do {
            _ = try await leader.coordinator.claimEpoch(EpochClaim(epoch: leader.epoch, nodeID: leader.configuration.nodeID, requirement: .newerEpoch))
        } catch {
            try? await server.channel.close()
            leader.lifecycle.failed(error)
            throw error
        }
        leader.core.startGating()
        leader.logger.info(
            "leader listening",
            metadata: [
                "address": "\(leader.configuration.host):\(port)", "epoch": "\(leader.epoch)", "policy": "\(leader.configuration.policy)",
                "tls": "\(leader.configuration.tls.map { $0.requireClientCertificate ? "mutual" : "on" } ?? "off")",
            ]
        )

        let shutdownRequests = AsyncStream<Void>.makeStream()
        leader.lifecycle.listening(on: port, shutdownRequests: shutdownRequests.continuation)

        // The accept loop runs in its own task and ends when the server channel closes, not on
        // cancellation: a cancelled iterator would drop connections NIO has already accepted,
        // and every accepted connection must run through executeThenClose.
        let accepting = Task {
            await withDiscardingTaskGroup { group in
                try? await server.executeThenClose { accepted in
                    for try await connection in accepted {
                        group.addTask { await FollowerLink(leader: leader, connection: connection).serve() }
                    }
                }
            }
        }
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
                            leader.lifecycle.closeAllConnections()
                            break
                        }
                    }
                    await accepting.value
                    shutdownRequests.continuation.finish()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                leader.lifecycle.requestShutdown()
            }
        } onCancel: {
            server.channel.close(promise: nil)
            leader.lifecycle.closeAllConnections()
        }
        leader.lifecycle.stopped()
        // A flush and two small files, off the cooperative threads. Detached: a run() ended
        // by cancellation must still record its end, and the pool refuses cancelled callers.
        _ = try? await Task.detached { [leader] in try await NIOThreadPool.singleton.runIfActive { leader.recordEpochEnd() } }.value
        leader.logger.info("leader stopped", metadata: ["epoch": "\(leader.epoch)"])
    }

    /// Seals and waits for the connected followers to hold everything (bounded).
    private func drainBeforeClosing() async {
        leader.core.sealOpenBatch()
        let last = leader.core.lastAssignedLSN
        let deadline = ContinuousClock.now + leader.configuration.shutdownTimeout
        func behind() -> [String] {
            leader.status().followers.filter { $0.ackedLSN < last }.map(\.nodeID)
        }
        leader.logger.info("leader shutting down; waiting for followers to ack", metadata: ["lastLSN": "\(last)", "timeout": "\(leader.configuration.shutdownTimeout)"])
        while !behind().isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let missing = behind()
        if !missing.isEmpty {
            leader.logger.warning("followers had not acked everything at shutdown", metadata: ["followers": "\(missing)", "lastLSN": "\(last)"])
        }
    }

    /// Every 20 ms: lagging followers leave the in-sync set and caught-up ones join, the change
    /// is persisted through the coordinator before confirms rely on it (Docs/Semantics.md, "In-sync
    /// replicas and confirms"), and confirms past `producerTimeout` fail.
    private func runInSyncTick() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
            guard let change = leader.core.tick() else { continue }
            let before = leader.core.inSyncSnapshot.members
            do {
                try await leader.coordinator.storeInSyncReplicas(change.sorted(), epoch: leader.epoch)
                leader.core.inSyncPersisted(change)
                let (joined, left) = (change.subtracting(before).sorted(), Set(before).subtracting(change).sorted())
                leader.logger.info("in-sync replicas changed", metadata: ["isr": "\(change.sorted())", "joined": "\(joined)", "left": "\(left)"])
                leader.events.publish(.inSyncReplicasChanged(members: change.sorted(), joined: joined, left: left))
                leader.metrics.inSyncChanged(joined: joined, left: left)
            } catch {
                leader.core.inSyncPersisted(nil)
                leader.repeatedWarnings.log(leader.logger, .error, "cannot persist the in-sync replicas; confirms keep the previous set", key: "persist", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Refreshes the gauges every `metricsInterval`.
    private func runMetricsTick() async {
        while !Task.isCancelled {
            leader.metrics.sample(leader.status())
            try? await Task.sleep(for: leader.configuration.metricsInterval)
        }
    }

    /// Seals a non-empty batch every `flushInterval`, so a quiet producer's write is not held back.
    private func runFlushTick() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: leader.configuration.flushInterval)
            leader.core.sealOpenBatch()
        }
    }
}
