import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One side of a proxied connection: reads what flows in one direction, applies the faults,
/// and writes it to the partner channel. Both partners live on the same event loop.
///
/// Reading is the only throttle: the handler holds back `read()` while the partner cannot
/// take more (backpressure), while a cap asks for a pause, or while a black hole is set.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: FaultInjectingProxy
    private let connectionID: UInt64
    /// The direction of the data this handler reads.
    private let direction: FaultInjectingProxy.Direction
    var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// A bandwidth cap pauses reading until then.
    private var pausedUntil: NIODeadline?
    /// Delivery times only grow, so a latency lowered at run time cannot reorder bytes.
    private var lastDelivery = NIODeadline.uptimeNanoseconds(0)
    private var resetAfter: Int?
    private var corruptAt: Int?
    private var forwardingClosed = false
    /// Bytes read just as a black hole began: held, not dropped, so that a healed connection
    /// carries an intact stream, as TCP would after retransmitting.
    private var held: [ByteBuffer] = []

    init(proxy: FaultInjectingProxy, connectionID: UInt64, reads direction: FaultInjectingProxy.Direction) {
        self.proxy = proxy
        self.connectionID = connectionID
        self.direction = direction
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    // MARK: Reading and forwarding

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let faults = proxy.currentFaults(direction)
        if forwardingClosed { return }
        if faults.blackHole || !held.isEmpty {
            held.append(buffer)
            return
        }
        if let offset = corruptAt {
            if offset < buffer.readableBytes {
                let index = buffer.readerIndex + offset
                buffer.setInteger(~buffer.getInteger(at: index, as: UInt8.self)!, at: index)
                corruptAt = nil
            } else {
                corruptAt = offset - buffer.readableBytes
            }
        }
        if let remaining = resetAfter {
            if remaining <= buffer.readableBytes {
                let head = buffer.readSlice(length: remaining)!
                forward(head, latency: .zero)
                resetBoth()
                return
            }
            resetAfter = remaining - buffer.readableBytes
        }
        let bytes = buffer.readableBytes
        forward(buffer, latency: faults.latency)
        if let rate = faults.bytesPerSecond, rate > 0 {
            let now = NIODeadline.now()
            let start = max(now, pausedUntil ?? now)
            pausedUntil = start + .nanoseconds(Int64(Double(bytes) / Double(rate) * 1e9))
        }
    }

    private func forward(_ buffer: ByteBuffer, latency: Duration) {
        guard let partner, let partnerContext = partner.context, let context else { return }
        proxy.forwarded(buffer.readableBytes, direction)
        let now = NIODeadline.now()
        let due = max(now + TimeAmount(latency), lastDelivery)
        guard due > now else {
            partnerContext.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            return
        }
        lastDelivery = due
        context.eventLoop.assumeIsolated().scheduleTask(deadline: due) {
            guard let partnerContext = partner.context else { return }
            partnerContext.writeAndFlush(partner.wrapOutboundOut(buffer), promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        if mayRead() {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private func mayRead() -> Bool {
        if proxy.currentFaults(direction).blackHole { return false }
        if let partnerContext = partner?.context, !partnerContext.channel.isWritable { return false }
        if let pausedUntil, let context {
            let now = NIODeadline.now()
            if pausedUntil > now {
                context.eventLoop.assumeIsolated().scheduleTask(deadline: pausedUntil) { [weak self] in self?.resumeReading() }
                return false
            }
        }
        return true
    }

    private func resumeReading() {
        guard pendingRead, let context, mayRead() else { return }
        pendingRead = false
        context.read()
    }

    func faultsChanged() {
        if !held.isEmpty, !proxy.currentFaults(direction).blackHole, let context {
            let released = held
            held = []
            for buffer in released { channelRead(context: context, data: wrapInboundOut(buffer)) }
        }
        resumeReading()
    }

    // MARK: Backpressure and closing

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The partner reads what this channel writes.
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A FIN from this side becomes a FIN to the other side, nothing more.
            partner?.closeOutput()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        proxy.closed(connectionID)
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func closeOutput() {
        context?.close(mode: .output, promise: nil)
    }

    // MARK: One-shot faults

    func armReset(afterBytes bytes: Int) {
        if bytes == 0 { resetBoth() } else { resetAfter = bytes }
    }

    func armCorruption(atOffset offset: Int) {
        corruptAt = offset
    }

    func halfCloseForwarding() {
        forwardingClosed = true
        partner?.closeOutput()
    }

    /// Closes both sockets with an RST: SO_LINGER with a zero timeout discards what is unsent.
    private func resetBoth() {
        closeBoth(reset: true)
    }

    func closeBoth(reset: Bool) {
        for side in [self, partner].compactMap({ $0 }) {
            guard let context = side.context else { continue }
            if reset {
                // Runs at once on the event loop, before the close below.
                _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            }
            context.close(promise: nil)
        }
    }
}
