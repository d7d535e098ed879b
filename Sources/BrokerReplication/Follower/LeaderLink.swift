import Logging
import NIOCore
import NIOSSL
import NIOPosix
import Synchronization

/// The follower's link to its leader: handshake, full sync or resume, then the
/// stream. This task reads and applies; a committer task makes applied records durable in
/// groups and acks the highest durable LSN (cumulative).
struct LeaderLink {
    let follower: ReplicationFollower

    struct Refused: Error, CustomStringConvertible {
        let refusal: Refusal
        var description: String { "refused by the leader (\(refusal.code)): \(refusal.reason)" }
    }

    struct LeaderSilent: Error, CustomStringConvertible {
        var description: String { "the leader sent nothing within the silence timeout" }
    }

    struct ProtocolError: Error, CustomStringConvertible {
        let description: String
    }

    private var configuration: ReplicationFollowerConfiguration { follower.configuration }
    private var logger: Logger { follower.logger }

    func run() async throws {
        let limits = configuration.wireLimits
        let silence = TimeAmount(configuration.leaderSilenceTimeout)
        let tlsContext = follower.tlsContext
        let host = configuration.leaderHost
        let connection = try await ClientBootstrap(group: follower.eventLoopGroup)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: configuration.leaderHost, port: configuration.leaderPort) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try TCPKeepalive.configure(channel)
                    if let tlsContext { try TLSLink.addClientHandler(tlsContext, host: host, to: channel) }
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(IdleStateHandler(readTimeout: silence))
                    try operations.addHandler(LeaderSilenceHandler())
                    // TLS authenticates every byte; without it, every frame carries a tag.
                    try operations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits, preamble: .none, authenticatesFrames: tlsContext == nil)))
                    if tlsContext == nil { try operations.addHandler(FrameAuthenticationHandler(side: .follower)) }
                    return try NIOAsyncChannel<Frame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await connection.executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            let welcome = try await handshake(frames: &frames, outbound: outbound, channel: connection.channel)
            var position = follower.stateFile.load()
            switch welcome.resync {
            case .fullSync:
                follower.update { $0.phase = .syncing; $0.fullSyncs += 1 }
                do {
                    position = try await receiveFullSync(epoch: welcome.epoch, frames: &frames, outbound: outbound, allocator: connection.channel.allocator)
                } catch {
                    // Tell the leader why, as the stream does: a full disk must show on the leader.
                    let diskFailure = (error as? ApplyError).map { if case .storage = $0 { true } else { false } } ?? (error is StorageError)
                    if diskFailure || error is ApplyError {
                        let refusal = Refusal(code: diskFailure ? .diskError : .protocolViolation, reason: "\(error)")
                        try? await write(.refusal(refusal), to: outbound, allocator: connection.channel.allocator)
                    }
                    throw error
                }
            case .resume:
                if welcome.epoch > position.epoch, position.epoch > 0, welcome.nextLSN == 1 {
                    // The leader's epoch history says its epoch started from exactly this data.
                    position = FollowerPosition(epoch: welcome.epoch, lastDurableLSN: 0)
                } else if welcome.epoch != position.epoch || welcome.nextLSN != position.lastDurableLSN + 1 {
                    throw ProtocolError(description: "leader resumes epoch \(welcome.epoch) at LSN \(welcome.nextLSN), but this follower holds epoch \(position.epoch) through LSN \(position.lastDurableLSN)")
                }
                follower.update { $0.resumes += 1 }
                logger.info("resuming from the leader's backlog", metadata: ["epoch": "\(welcome.epoch)", "nextLSN": "\(welcome.nextLSN)"])
            }
            let streamingFrom = position
            follower.update { $0.phase = .streaming; $0.epoch = streamingFrom.epoch; $0.lastDurableLSN = streamingFrom.lastDurableLSN }
            try await stream(from: streamingFrom, frames: &frames, outbound: outbound, channel: connection.channel)
        }
    }

    private func write(_ message: WireMessage, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, allocator: ByteBufferAllocator) async throws {
        try await outbound.write(message.encoded(using: allocator))
    }

    /// Preamble and hello, challenge, authenticate, welcome. The decisions are
    /// ``FollowerHandshake``'s; this performs them.
    private func handshake(
        frames: inout NIOAsyncChannelInboundStream<Frame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        channel: any Channel
    ) async throws -> Welcome {
        let allocator = channel.allocator
        var handshake = FollowerHandshake(clusterID: configuration.clusterID, nodeID: configuration.nodeID, secret: follower.secret)
        try await outbound.write(WireMessage.hello(handshake.hello).encoded(using: allocator, preamble: true))
        while true {
            let message = try await nextMessage(&frames)
            if follower.tlsContext == nil, case .challenge(let challenge) = message {
                // In place before this follower's next frame, so before the leader can send a tagged one.
                let keys = FrameAuthentication.SessionKeys(secret: follower.secret, followerNonce: handshake.followerNonce, leaderNonce: challenge.leaderNonce)
                try await channel.triggerUserOutboundEvent(FrameAuthenticationHandler.Start(keys: keys)).get()
            }
            let position = follower.stateFile.load()
            switch handshake.received(message, position: (position.epoch, position.lastDurableLSN)) {
            case .sendAuthenticate(let authenticate):
                try await write(.authenticate(authenticate), to: outbound, allocator: allocator)
            case .refuse(let refusal):
                try? await write(.refusal(refusal), to: outbound, allocator: allocator)
                throw Refused(refusal: refusal)
            case .refused(let refusal):
                throw Refused(refusal: refusal)
            case .protocolError(let description):
                throw ProtocolError(description: description)
            case .welcomed(let welcome):
                return welcome
            }
        }
    }

    private func nextMessage(_ frames: inout NIOAsyncChannelInboundStream<Frame>.AsyncIterator) async throws -> WireMessage {
        guard let frame = try await frames.next() else { throw ProtocolError(description: "the leader closed the connection") }
        return try WireMessage(decoding: frame, limits: configuration.wireLimits)
    }

    /// A heartbeat reply carries the durable LSN, so it acks it too.
    private func heartbeatReply(_ heartbeat: Heartbeat) -> WireMessage {
        let durable = follower.status().lastDurableLSN
        follower.metrics.heard(leaderLSN: heartbeat.leaderLSN)
        follower.update { $0.lastAckedLSN = durable }
        return .heartbeatReply(HeartbeatReply(echoedSentAtNanoseconds: heartbeat.sentAtNanoseconds, durableLSN: durable))
    }

    /// Receives the files as of the leader's cut, installs them durably, and acks the cut.
    private func receiveFullSync(
        epoch: UInt64,
        frames: inout NIOAsyncChannelInboundStream<Frame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        allocator: ByteBufferAllocator
    ) async throws -> FollowerPosition {
        let durable = configuration.durability == .fsync
        // Until the sync is installed the local files match no LSN: a crash now means another
        // full sync, and heartbeat replies report nothing durable.
        try follower.stateFile.store(.none, durable: durable)
        follower.update { $0.epoch = 0; $0.lastDurableLSN = 0 }
        let progress = SyncProgressReporter()
        return try await withThrowingTaskGroup(of: Void.self, returning: FollowerPosition.self) { group in
            group.addTask { await progress.run(outbound: outbound, allocator: allocator) }
            defer { group.cancelAll() }
            return try await receiveFullSync(epoch: epoch, durable: durable, progress: progress, frames: &frames, outbound: outbound, allocator: allocator)
        }
    }

    private func receiveFullSync(
        epoch: UInt64,
        durable: Bool,
        progress: SyncProgressReporter,
        frames: inout NIOAsyncChannelInboundStream<Frame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        allocator: ByteBufferAllocator
    ) async throws -> FollowerPosition {
        var receiver: FullSyncReceiver?
        var requested = false
        while true {
            let message = try await nextMessage(&frames)
            switch message {
            case .heartbeat(let heartbeat):
                try await write(heartbeatReply(heartbeat), to: outbound, allocator: allocator)
            case .syncBegin(let begin):
                receiver = FullSyncReceiver(
                    directory: follower.directory, index: follower.chunkIndex, begin: begin, limits: configuration.wireLimits, durable: durable
                )
                logger.info("full sync begins", metadata: ["cutLSN": "\(begin.cutLSN)", "files": "\(begin.fileCount)"])
            case .syncManifest(let firstIndex, let entries):
                guard receiver != nil else { throw ProtocolError(description: "sync manifest before sync begin") }
                try receiver!.addManifest(firstIndex: firstIndex, entries: entries)
            case .syncChunk(let chunk):
                guard requested, receiver != nil else { throw ProtocolError(description: "sync chunk before the request") }
                try receiver!.receive(chunk)
                progress.received(Int(chunk.uncompressedBytes))
            case .syncEnd(let cutLSN):
                guard requested, let finishing = receiver, finishing.cutLSN == cutLSN else {
                    throw ProtocolError(description: "sync end for LSN \(cutLSN) does not match the sync in progress")
                }
                receiver = try await NIOThreadPool.singleton.runIfActive { () throws -> FullSyncReceiver in
                    var finished = finishing
                    try finished.finish()
                    return finished
                }
                let position = FollowerPosition(epoch: epoch, lastDurableLSN: cutLSN)
                try follower.stateFile.store(position, durable: durable)
                follower.changes.fullSyncInstalled(epoch: epoch, lsn: cutLSN)
                try await write(.ack(durableLSN: cutLSN), to: outbound, allocator: allocator)
                follower.update { $0.lastAckedLSN = cutLSN }
                logger.info("full sync installed", metadata: ["epoch": "\(epoch)", "cutLSN": "\(cutLSN)"])
                return position
            case let other:
                throw ProtocolError(description: "unexpected \(other.frameType) during a full sync")
            }
            if !requested, let current = receiver, current.manifestComplete {
                let planned = try await NIOThreadPool.singleton.runIfActive { () throws -> ([SyncRequest.File], FullSyncReceiver) in
                    var planning = current
                    let files = try planning.planRequests(checked: progress.checked)
                    return (files, planning)
                }
                receiver = planned.1
                let files = planned.0
                var frames = stride(from: 0, to: files.count, by: SyncRequest.maximumFiles).map {
                    Array(files[$0..<min($0 + SyncRequest.maximumFiles, files.count)])
                }
                if frames.isEmpty { frames = [[]] }
                for (number, frame) in frames.enumerated() {
                    try await write(.syncRequest(SyncRequest(files: frame, isLast: number == frames.count - 1)), to: outbound, allocator: allocator)
                }
                logger.info(
                    "full sync planned",
                    metadata: ["files": "\(files.count) of \(current.fileCount)", "keptBytes": "\(planned.1.keptBytes)"]
                )
                requested = true
            }
        }
    }

    /// Applies data frames in LSN order; the committer makes them durable and acks.
    private func stream(
        from position: FollowerPosition,
        frames: inout NIOAsyncChannelInboundStream<Frame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        channel: any Channel
    ) async throws {
        let allocator = channel.allocator
        let durable = configuration.durability == .fsync
        let applier = RecordApplier(directory: follower.directory, durable: durable, maximumOpenFiles: configuration.maximumOpenFiles)
        defer { applier.closeAll() }
        let committer = Committer(follower: follower, epoch: position.epoch, durable: durable, durableLSN: position.lastDurableLSN)
        follower.setActiveCommitter(committer)
        defer { follower.setActiveCommitter(nil) }
        var sequence = LSNSequence(nextLSN: position.lastDurableLSN + 1)
        let decoder = BatchDecoder(limits: configuration.wireLimits)
        var paths = BatchDecoder.PathCache()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await committer.run(outbound: outbound, allocator: allocator)
                    } catch {
                        // This loop waits on the socket and would never see the failure (a task
                        // group drops the errors of children nobody awaits): end the inbound
                        // stream with it, so the connection fails with the commit's reason.
                        channel.pipeline.fireErrorCaught(error)
                    }
                }
                defer {
                    committer.stop()
                    group.cancelAll()
                }
                while let frame = try await frames.next() {
                    switch try WireMessage(decoding: frame, limits: configuration.wireLimits) {
                    case .data(let data):
                        // Shutting down gracefully: apply nothing more, so that what is acked
                        // last is everything applied (the leader resends the rest later).
                        guard committer.beginApplying() else { continue }
                        try sequence.accept(data)
                        let records = try decoder.records(of: data, paths: &paths)
                        try await NIOThreadPool.singleton.runIfActive { try applier.apply(records) }
                        follower.changes.applied(records, firstLSN: data.firstLSN)
                        committer.applied(through: data.lastLSN)
                        follower.metrics.applied(records: Int(data.recordCount), bytes: Int(data.uncompressedBytes))
                    case .heartbeat(let heartbeat):
                        try await write(heartbeatReply(heartbeat), to: outbound, allocator: allocator)
                    case .refusal(let refusal):
                        throw Refused(refusal: refusal)
                    case let other:
                        throw ProtocolError(description: "unexpected \(other.frameType) while streaming")
                    }
                }
            }
        } catch let error as StorageError {
            // The group commit failed (an fsync or the state file): what was applied may not be
            // on disk, so forget the position and tell the leader, as for any disk error.
            try? follower.stateFile.store(.none, durable: durable)
            follower.update { $0.epoch = 0; $0.lastDurableLSN = 0 }
            try? await write(.refusal(Refusal(code: .diskError, reason: error.description)), to: outbound, allocator: allocator)
            throw error
        } catch let error as ApplyError {
            // The stream does not fit the files (or the disk failed): forget the position so
            // the next connection runs a full sync, which repairs exactly the files that differ.
            try? follower.stateFile.store(.none, durable: durable)
            follower.update { $0.epoch = 0; $0.lastDurableLSN = 0 }
            let code: Refusal.Code = if case .storage = error { .diskError } else { .protocolViolation }
            try? await write(.refusal(Refusal(code: code, reason: error.description)), to: outbound, allocator: allocator)
            throw error
        } catch {
            // Make everything applied durable before reconnecting, so the next connection
            // resumes after it instead of replaying records onto files that already hold
            // later changes (a replayed append can meet a file a later replace made shorter).
            await commitRemaining(committer, durable: durable)
            throw error
        }
        await commitRemaining(committer, durable: durable)
    }

    /// Makes what was applied durable once the connection ended. If that fails the files may
    /// hold records the position does not cover, and replaying onto them is unsafe: forget the
    /// position, so the next connection runs a full sync.
    private func commitRemaining(_ committer: Committer, durable: Bool) async {
        do {
            try await committer.commitRemaining()
        } catch {
            try? follower.stateFile.store(.none, durable: durable)
            follower.update { $0.epoch = 0; $0.lastDurableLSN = 0 }
            logger.error("cannot make the applied records durable; the next connection runs a full sync", metadata: ["error": "\(error)"])
        }
    }
}
