import NIOCore
import Synchronization

/// A liveness monitor shared by one connection's reader, writer and watcher tasks.
package final class SharedLiveness: Sendable {
    private let monitor: Mutex<LivenessMonitor>

    package init(_ monitor: LivenessMonitor) {
        self.monitor = Mutex(monitor)
    }

    package func withLock<T: Sendable>(_ body: (inout LivenessMonitor) -> T) -> T {
        monitor.withLock { body(&$0) }
    }
}

/// Feeds the liveness monitor from the channel's event loop as acks and heartbeat replies
/// arrive, before the connection's task reads them: when producers keep Swift's cooperative
/// pool busy, a follower that did answer must not look silent (a black-holed peer).
final class LivenessTap: ChannelInboundHandler, Sendable {
    typealias InboundIn = WireMessage
    typealias InboundOut = WireMessage

    private let liveness = Mutex<SharedLiveness?>(nil)

    /// Starts feeding `monitor` (once the follower streams).
    func attach(_ monitor: SharedLiveness) {
        liveness.withLock { $0 = monitor }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let monitor = liveness.withLock({ $0 }) {
            let now = ContinuousClock.now
            switch unwrapInboundIn(data) {
            case .ack(let lsn): monitor.withLock { $0.acked(lsn, at: now) }
            case .heartbeatReply(let reply) where reply.durableLSN > 0: monitor.withLock { $0.acked(reply.durableLSN, at: now) }
            case .syncProgress(let report):
                monitor.withLock { $0.followerReported(bytes: report.bytesChecked &+ report.bytesReceived, at: now) }
            default: monitor.withLock { $0.heard(at: now) }
            }
        }
        context.fireChannelRead(data)
    }
}
