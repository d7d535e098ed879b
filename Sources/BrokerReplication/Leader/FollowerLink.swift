import LZ4
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The leader's link to one follower: handshake, then three concurrent jobs until the
/// connection ends: read acks, write frames (full sync first when needed), watch liveness.
///
/// Eviction closes the channel from anywhere; every job here then ends on its own, and the
/// cleanup runs in this connection's own path. Nothing waits for this connection while
/// holding a lock (Docs/Semantics.md, "Producers never wait for followers").
struct FollowerLink {
    let leader: ReplicationLeader
    let connection: NIOAsyncChannel<WireMessage, ByteBuffer>

    private var core: LeaderCore { leader.core }
    private var configuration: ReplicationLeaderConfiguration { leader.configuration }
    private var channel: any Channel { connection.channel }

    func serve() async {
        let remote = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
        var logger = leader.logger
        logger[metadataKey: "address"] = "\(remote)"
        switch leader.lifecycle.track(channel) {
        case .tracked:
            break
        case .stopping:
            // Close without serving (executeThenClose finishes the writer).
            try? await connection.executeThenClose { _, _ in }
            return
        case .handshakesFull:
            // One key for every peer: a flood of connections is one line per interval.
            leader.repeatedWarnings.log(
                logger, .warning,
                "connection closed: maximumHandshakingConnections (\(configuration.maximumHandshakingConnections)) connections are already in their handshake",
                key: "handshakes full"
            )
            try? await connection.executeThenClose { _, _ in }
            return
        }
        defer { leader.lifecycle.untrack(channel) }
        // A peer that never finishes the handshake is closed, not waited for.
        let handshakeTimer = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.handshakeTimeout)) { [channel] in
            channel.close(promise: nil)
        }
        var session: FollowerSession?
        do {
            try await connection.executeThenClose { inbound, outbound in
                var messages = inbound.makeAsyncIterator()
                guard let admission = try await handshake(messages: &messages, outbound: outbound, remote: remote, logger: logger) else { return }
                handshakeTimer.cancel()
                leader.lifecycle.finishedHandshake(channel)
                let admitted: FollowerSession
                switch admission {
                case .resume(let resumed, let nextLSN):
                    admitted = resumed
                    logger.info("follower resumes from the backlog", metadata: ["follower": "\(resumed.nodeID)", "nextLSN": "\(nextLSN)"])
                case .fullSync(let syncing):
                    admitted = syncing
                    logger.info("follower needs a full sync", metadata: ["follower": "\(syncing.nodeID)"])
                case .duplicate:
                    return  // refused in the handshake
                }
                session = admitted
                try await stream(admitted, admission: admission, messages: &messages, outbound: outbound, logger: logger)
            }
        } catch let error as WireError {
            if let session {
                let reason: EvictionReason = if case .authenticationFailed = error.code { .authentication } else { .decodeError }
                core.evict(session, reason: reason, detail: error.description)
            } else {
                let described = TLSLink.describePlaintextLeaderFailure(error, tls: configuration.tls != nil) ?? "\(error)"
                leader.repeatedWarnings.log(logger, .warning, "follower connection refused", key: "refused \(channel.remoteAddress?.ipAddress ?? "?")", metadata: ["error": "\(described)"])
            }
        } catch {
            if let session, core.isServing(session) {
                logger.info("follower connection ended", metadata: ["follower": "\(session.nodeID)", "error": "\(error)"])
            } else if session == nil, let tlsFailure = TLSLink.describeLeaderFailure(error) {
                leader.repeatedWarnings.log(
                    logger, .warning, "follower refused in TLS", key: "tls \(channel.remoteAddress?.ipAddress ?? "?")", metadata: ["error": "\(tlsFailure)"]
                )
            }
        }
        handshakeTimer.cancel()
        if let session {
            if core.isServing(session) {
                logger.info("follower disconnected", metadata: ["follower": "\(session.nodeID)"])
            }
            core.remove(session)
        }
    }

    private func write(_ message: WireMessage, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        try await outbound.write(message.encoded(using: channel.allocator))
    }

    private func refuse(_ refusal: Refusal, logger: Logger) async throws -> LeaderCore.Admission? {
        leader.repeatedWarnings.log(
            logger, .warning, "follower refused", key: "refused \(refusal.code) \(refusal.reason)",
            metadata: ["code": "\(refusal.code)", "reason": "\(refusal.reason)"]
        )
        // Straight to the channel, waiting until the socket took it: the close that follows
        // must not overtake the reason the follower needs to see.
        try await channel.writeAndFlush(WireMessage.refusal(refusal).encoded(using: channel.allocator)).get()
        return nil
    }

    /// Hello, challenge, authenticate, welcome; or a refusal with its reason. The decisions
    /// are ``LeaderHandshake``'s; this performs them.
    private func handshake(
        messages: inout NIOAsyncChannelInboundStream<WireMessage>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        remote: String,
        logger: Logger
    ) async throws -> LeaderCore.Admission? {
        var handshake = LeaderHandshake(clusterID: configuration.clusterID, leaderNodeID: configuration.nodeID, secret: leader.secret)
        while true {
            let message: WireMessage?
            do {
                message = try await messages.next()
            } catch let error as WireError {
                if case .unsupportedProtocolVersion = error.code {
                    return try await refuse(Refusal(code: .unsupportedVersion, reason: error.description), logger: logger)
                }
                if case .authenticationFailed = error.code {
                    // Tagged like every frame: a follower whose frame was changed on the way reads
                    // why; one with another secret cannot read it, and has refused us already.
                    return try await refuse(Refusal(code: .authenticationFailed, reason: error.description), logger: logger)
                }
                throw error
            }
            guard let message else { return nil }
            if configuration.tls?.requireClientCertificate == true, case .hello(let hello) = message {
                // The TLS handshake is over once a frame arrives: the certificate was verified.
                let identity = await CertificateIdentity.ofPeer(on: channel) ?? CertificateIdentity(dnsNames: [], commonName: nil)
                if !identity.admits(nodeID: hello.nodeID) {
                    return try await refuse(identity.refusal(nodeID: hello.nodeID), logger: logger)
                }
            }
            switch handshake.received(message) {
            case .sendChallenge(let challenge):
                if leader.tlsContext == nil, case .hello(let hello) = message {
                    // The keys are in place before the challenge leaves, so before any tagged frame can arrive.
                    let keys = FrameAuthentication.SessionKeys(secret: leader.secret, followerNonce: hello.followerNonce, leaderNonce: challenge.leaderNonce)
                    try await channel.triggerUserOutboundEvent(FrameAuthenticationHandler.Start(keys: keys)).get()
                }
                try await write(.challenge(challenge), to: outbound)
            case .refuse(let refusal):
                return try await refuse(refusal, logger: logger)
            case .refusedByFollower(let nodeID, let refusal):
                leader.repeatedWarnings.log(
                    logger, .warning, "follower refused this leader", key: "refused by \(nodeID)",
                    metadata: ["follower": "\(nodeID)", "code": "\(refusal.code)", "reason": "\(refusal.reason)"]
                )
                return nil
            case .authenticated(let nodeID, let epoch, let lastDurableLSN):
                return try await admit(nodeID: nodeID, epoch: epoch, lastDurableLSN: lastDurableLSN, remote: remote, outbound: outbound, logger: logger)
            }
        }
    }

    /// Asks the leader's state how an authenticated follower resumes, and welcomes or refuses it.
    private func admit(
        nodeID: String, epoch: UInt64, lastDurableLSN: UInt64, remote: String, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, logger: Logger
    ) async throws -> LeaderCore.Admission? {
        let admission = core.admit(
            nodeID: nodeID, remoteAddress: remote, channel: channel, liveness: LivenessView(aliveFor: configuration.heartbeatTimeout, from: .now),
            epoch: epoch, lastDurableLSN: lastDurableLSN
        )
        switch admission {
        case .resume(_, let nextLSN):
            leader.metrics.connected(nodeID, fullSync: false)
            try await write(.welcome(Welcome(epoch: leader.epoch, resync: .resume, nextLSN: nextLSN)), to: outbound)
        case .fullSync:
            leader.metrics.connected(nodeID, fullSync: true)
            try await write(.welcome(Welcome(epoch: leader.epoch, resync: .fullSync, nextLSN: 0)), to: outbound)
        case .duplicate(let reason):
            return try await refuse(Refusal(code: .duplicateNode, reason: reason), logger: logger)
        }
        return admission
    }

    /// The streaming phase: this task reads, child tasks write and watch liveness.
    private func stream(
        _ session: FollowerSession,
        admission: LeaderCore.Admission,
        messages: inout NIOAsyncChannelInboundStream<WireMessage>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        logger: Logger
    ) async throws {
        let syncRequests = AsyncStream<SyncRequest>.makeStream()
        let phase: LivenessEvent.Watch.Phase
        switch admission {
        case .resume(_, let nextLSN): phase = .resumed(atLSN: nextLSN - 1)
        case .fullSync: phase = .syncing
        case .duplicate: return
        }
        // Heartbeats go straight to the channel from the handler, so a blocked writer cannot
        // hold them up; the tick is a quarter of the shortest timeout it enforces.
        let watch = LivenessEvent.Watch(
            phase: phase,
            timeouts: LivenessMonitor.Timeouts(
                ackTimeout: configuration.ackTimeout, heartbeatInterval: configuration.heartbeatInterval,
                heartbeatTimeout: configuration.heartbeatTimeout
            ),
            tick: min(configuration.heartbeatInterval, configuration.ackTimeout) / 4,
            view: session.liveness,
            leaderLSN: { [core] in core.lastAssignedLSN },
            evict: { [self] reason, syncing in evictSilent(session, reason: reason, syncing: syncing) }
        )
        try await channel.triggerUserOutboundEvent(LivenessEvent.start(watch)).get()

        try await withThrowingTaskGroup(of: Void.self) { group in
            // The reader below waits on the socket and would never see this task's errors (a
            // task group drops the errors of children nobody awaits), so a failure here
            // evicts, which closes the channel and ends the reader.
            group.addTask {
                if case .fullSync = admission {
                    let sender = FullSyncSender(leader: leader, session: session, outbound: outbound, logger: logger)
                    do {
                        _ = try await sender.run(requests: syncRequests.stream)
                    } catch is CancellationError {
                        return
                    } catch let error as WireError {
                        // A request for a file the manifest does not have: the follower's fault.
                        core.evict(session, reason: .decodeError, detail: error.description)
                        return
                    } catch {
                        // A write that failed because the follower left is no failure of the sync.
                        if channel.isActive { core.evict(session, reason: .fullSyncFailed, detail: "\(error)") }
                        return
                    }
                }
                // A write fails only once the channel is closing: the reader ends by itself.
                try? await drain(session, outbound: outbound)
            }
            defer {
                syncRequests.continuation.finish()
                group.cancelAll()
            }
            while let message = try await messages.next() {
                switch message {
                case .ack(let lsn):
                    try record(ack: lsn, session: session)
                case .heartbeatReply(let reply):
                    // The LivenessHandler has already counted it as heard. Durable LSN 0 counts too:
                    // for a leader that has written nothing it says "caught up", and without it
                    // an idle follower would leave the in-sync set after maxLagTime.
                    try record(ack: reply.durableLSN, session: session)
                case .syncRequest(let request):
                    syncRequests.continuation.yield(request)
                case .syncProgress:
                    break  // The LivenessHandler has counted it.
                case .refusal(let refusal):
                    let reason: EvictionReason = refusal.code == .diskError ? .diskError : .decodeError
                    core.evict(session, reason: reason, detail: "follower reported \(refusal.code): \(refusal.reason)")
                    return
                default:
                    throw WireError(.unexpectedFrame(type: message.frameType, state: "streaming to a follower"))
                }
            }
        }
    }

    private func record(ack lsn: UInt64, session: FollowerSession) throws {
        // The LivenessHandler fed the liveness monitor when the ack arrived.
        switch core.recordAck(session, lsn: lsn) {
        case .recorded(let settledBytes):
            leader.metrics.acked(session.nodeID, bytes: settledBytes)
        case .beyondSent(let sent):
            throw WireError(.malformedFrame(type: .ack, reason: "acks LSN \(lsn), but only \(sent) was sent"))
        case .unknown:
            break  // Evicted meanwhile: its channel is closing.
        }
    }

    /// Writes backlog frames, then live frames, as fast as the socket takes them.
    private func drain(_ session: FollowerSession, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        while !Task.isCancelled {
            switch core.nextWork(for: session) {
            case .closed:
                return
            case .wait:
                await session.waitForWork()
            case .frames(let batches, let fromBacklog):
                if fromBacklog { try await leader.catchUpLimiter.pace(batches.reduce(0) { $0 + $1.wireBytes }) }
                try await outbound.write(contentsOf: batches.map(\.frame))
                channel.triggerUserOutboundEvent(LivenessEvent.sent(throughLSN: batches.last!.lastLSN), promise: nil)
                core.recordSent(batches, by: session)
                leader.metrics.sent(session.nodeID, bytes: batches.reduce(0) { $0 + $1.wireBytes })
            }
        }
    }

    /// The liveness handler found the follower silent, or its ack or full sync stuck.
    private func evictSilent(_ session: FollowerSession, reason: EvictionReason, syncing: Bool) {
        let snapshot = core.snapshot(of: session)
        let (acked, sent) = (snapshot?.ackedLSN ?? 0, snapshot?.sentLSN ?? 0)
        let detail = reason == .ackTimeout
            ? "no ack for \(configuration.ackTimeout) with LSNs \(acked + 1)...\(sent) outstanding"
            : syncing ? "the full sync moved no bytes for \(configuration.heartbeatTimeout)"
            : "nothing heard for \(configuration.heartbeatTimeout)"
        core.evict(session, reason: reason, detail: detail)
    }
}

/// Monotonic nanoseconds for heartbeat timestamps (echoed back, never compared across hosts).
enum DispatchTimeNanoseconds {
    static func now() -> Int64 {
        let instant = NIODeadline.now()
        return instant.uptimeNanoseconds > UInt64(Int64.max) ? Int64.max : Int64(instant.uptimeNanoseconds)
    }
}
