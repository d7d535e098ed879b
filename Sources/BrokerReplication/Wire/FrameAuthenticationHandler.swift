import NIOCore

/// Checks the tag of every frame that comes in and tags every frame that goes out, on a link
/// without TLS (``FrameAuthentication``). It sits right above the frame decoder, so every
/// writer's frames pass it in their final order.
///
/// The link hands it the connection's keys with ``Start`` as soon as its handshake has both
/// nonces, before it sends its next frame; the peer cannot send a tagged frame before it has
/// read that one, so the keys are always there in time. A frame whose tag does not verify
/// ends the connection with ``WireError`` `authenticationFailed` and goes no further.
final class FrameAuthenticationHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias InboundOut = Frame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The user outbound event that sets the keys.
    struct Start: Sendable {
        let keys: FrameAuthentication.SessionKeys
    }

    private let side: FrameAuthentication.Side
    private var verifier: FrameVerifier
    private var tagger: FrameTagger
    private var failed = false

    init(side: FrameAuthentication.Side) {
        self.side = side
        self.verifier = FrameVerifier(side: side)
        self.tagger = FrameTagger(side: side)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        do {
            try verifier.verify(unwrapInboundIn(data))
        } catch {
            fail(error, context: context)
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let pieces: [FrameTagger.Piece]
        do {
            pieces = try tagger.tag(unwrapOutboundIn(data))
        } catch {
            promise?.fail(error)
            fail(error, context: context)
            return
        }
        guard let last = pieces.indices.last else {
            context.write(data, promise: promise)
            return
        }
        for index in pieces.indices {
            let bytes: ByteBuffer
            switch pieces[index] {
            case .bytes(let buffer): bytes = buffer
            case .tag(let tag): bytes = context.channel.allocator.buffer(bytes: tag)
            }
            context.write(wrapOutboundOut(bytes), promise: index == last ? promise : nil)
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let start = event as? Start else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        verifier.keys = start.keys
        tagger.keys = start.keys
        promise?.succeed()
    }

    /// Later frames are dropped; the link that reads the error decides what to tell the peer
    /// (the leader refuses a handshake frame that failed with a reason) and closes.
    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        failed = true
        context.fireErrorCaught(error)
    }
}

/// The checking half: a frame's position decides whether it must carry a tag, and the keys
/// decide whether the tag is right. Pure, so the tests' raw follower uses it too.
struct FrameVerifier {
    let side: FrameAuthentication.Side
    var keys: FrameAuthentication.SessionKeys?
    /// The position of the next frame, counting from 0.
    private(set) var sequence: UInt64 = 0

    init(side: FrameAuthentication.Side) {
        self.side = side
    }

    mutating func verify(_ frame: Frame) throws(WireError) {
        defer { sequence += 1 }
        guard sequence > 0 else { return }  // A side's first frame goes before the keys exist.
        guard let trailer = frame.trailer else {
            throw WireError(.malformedFrame(type: frame.type, reason: "frame \(sequence) carries no authentication tag"))
        }
        guard let keys else {
            throw WireError(.unexpectedFrame(type: frame.type, state: "the handshake had not yet reached that frame (frame \(sequence))"))
        }
        guard FrameAuthentication.isValid(frame, trailer: trailer, sequence: sequence, key: keys.receiving(at: side)) else {
            throw WireError(.authenticationFailed(type: frame.type, sequence: sequence))
        }
    }
}
