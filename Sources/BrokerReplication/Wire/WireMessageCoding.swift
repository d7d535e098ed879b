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
