import NIOCore

extension WireMessage {
    /// The one way a control message becomes bytes on the wire: one frame in a buffer of its
    /// own, after the protocol preamble when `preamble` is true (the follower's first write).
    func encoded(using allocator: ByteBufferAllocator, preamble: Bool = false) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Frame.headerBytes + (preamble ? FrameParser.preambleBytes : 0) + estimatedBodyBytes)
        if preamble { FrameParser.writePreamble(to: &buffer) }
        write(to: &buffer)
        return buffer
    }

    /// Enough for every fixed-size message; strings and chunks grow the buffer once.
    private var estimatedBodyBytes: Int {
        switch self {
        case .refusal(let refusal): 8 + refusal.reason.utf8.count
        case .syncChunk(let chunk): SyncChunk.headerBytes + chunk.compressed.readableBytes
        default: 160
        }
    }
}

/// Decodes each checksummed frame into its message, once, on the channel's event loop, so
/// the handlers after it and the connection's task all see the same decoded message.
///
/// A frame that does not decode fails the channel's inbound stream with its ``WireError``
/// (the connection's task refuses or evicts), and nothing after it is read.
final class WireMessageDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Frame
    typealias InboundOut = WireMessage

    private let limits: WireLimits
    private var failed = false

    init(limits: WireLimits) {
        self.limits = limits
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let frame = unwrapInboundIn(data)
        do {
            context.fireChannelRead(wrapInboundOut(try WireMessage(decoding: frame, limits: limits)))
        } catch {
            failed = true
            context.fireErrorCaught(error)
        }
    }
}

extension WireMessage {
    /// Appends this message as one complete frame to `buffer`.
    func write(to buffer: inout ByteBuffer) {
        let headerIndex = buffer.writerIndex
        buffer.writeRepeatingByte(0, count: Frame.headerBytes)
        switch self {
        case .hello(let hello):
            buffer.writeShortString(hello.clusterID)
            buffer.writeShortString(hello.nodeID)
            buffer.writeBytes(hello.followerNonce)
        case .challenge(let challenge):
            buffer.writeShortString(challenge.leaderNodeID)
            buffer.writeBytes(challenge.leaderNonce)
            buffer.writeBytes(challenge.leaderProof)
        case .authenticate(let authenticate):
            buffer.writeBytes(authenticate.followerProof)
            buffer.writeInteger(authenticate.epoch)
            buffer.writeInteger(authenticate.lastDurableLSN)
        case .welcome(let welcome):
            buffer.writeInteger(welcome.epoch)
            buffer.writeInteger(welcome.resync.rawValue)
            buffer.writeInteger(welcome.nextLSN)
        case .refusal(let refusal):
            buffer.writeInteger(refusal.code.rawValue)
            // A reason is for people; cut it at a character boundary rather than refuse to send it.
            var reason = Substring(refusal.reason)
            while reason.utf8.count > Refusal.maximumReasonBytes { reason = reason.dropLast() }
            buffer.writeLongString(String(reason))
        case .data(let data):
            buffer.writeInteger(data.firstLSN)
            buffer.writeInteger(data.recordCount)
            buffer.writeInteger(data.uncompressedBytes)
            buffer.writeInteger(data.codec)
            buffer.writeImmutableBuffer(data.compressed)
        case .heartbeat(let heartbeat):
            buffer.writeInteger(heartbeat.leaderLSN)
            buffer.writeInteger(heartbeat.sentAtNanoseconds)
        case .ack(let durableLSN):
            buffer.writeInteger(durableLSN)
        case .heartbeatReply(let reply):
            buffer.writeInteger(reply.echoedSentAtNanoseconds)
            buffer.writeInteger(reply.durableLSN)
        case .syncBegin(let begin):
            buffer.writeInteger(begin.cutLSN)
            buffer.writeInteger(begin.fileCount)
        case .syncManifest(let firstIndex, let entries):
            buffer.writeInteger(firstIndex)
            buffer.writeInteger(UInt16(entries.count))
            for entry in entries {
                buffer.writeLongString(entry.path.string)
                buffer.writeInteger(entry.size)
                buffer.writeInteger(UInt32(entry.chunkChecksums.count))
                for checksum in entry.chunkChecksums { buffer.writeInteger(checksum) }
            }
        case .syncRequest(let request):
            buffer.writeInteger(UInt8(request.isLast ? 1 : 0))
            buffer.writeInteger(UInt16(request.files.count))
            for file in request.files {
                buffer.writeInteger(file.index)
                buffer.writeInteger(file.offset)
                buffer.writeInteger(file.prefixChecksum)
            }
        case .syncChunk(let chunk):
            buffer.writeInteger(chunk.fileIndex)
            buffer.writeInteger(chunk.offset)
            buffer.writeInteger(chunk.uncompressedBytes)
            buffer.writeInteger(DataFrame.codecLZ4Block)
            buffer.writeImmutableBuffer(chunk.compressed)
        case .syncEnd(let cutLSN):
            buffer.writeInteger(cutLSN)
        case .syncProgress(let report):
            buffer.writeInteger(report.bytesChecked)
            buffer.writeInteger(report.bytesReceived)
        }
        Frame.fillHeader(in: &buffer, at: headerIndex, type: frameType)
    }
}
