import NIOCore
import Synchronization

/// Watches one follower's liveness on its channel's event loop, around the pure
/// ``LivenessMonitor``: it feeds the monitor from the messages the follower sends, checks it
/// every tick, sends heartbeats on an idle link and reports an eviction.
///
/// Everything happens on the event loop, not in Swift's cooperative pool: when producers keep
/// the pool busy, a follower that did answer must not look silent, and a silent one (a
/// black-holed peer) must still be evicted on time. Other tasks tell it what they did with
/// ``LivenessEvent``s, sent as outbound user events, which reach it on the event loop in order.
final class LivenessHandler: ChannelDuplexHandler {
    typealias InboundIn = WireMessage
    typealias InboundOut = WireMessage
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var watch: LivenessEvent.Watch?
    private var monitor: LivenessMonitor?
    private var timer: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if monitor != nil, let watch {
            let now = watch.now()
            switch unwrapInboundIn(data) {
            case .ack(let lsn): update { $0.acked(lsn, at: now) }
            case .heartbeatReply(let reply) where reply.durableLSN > 0: update { $0.acked(reply.durableLSN, at: now) }
            case .syncProgress(let report): update { $0.followerReported(bytes: report.bytesChecked &+ report.bytesReceived, at: now) }
            default: update { $0.heard(at: now) }
            }
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? LivenessEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        let now = (self.watch?.now ?? event.now)()
        switch event {
        case .start(let watch):
            self.watch = watch
            var monitor = LivenessMonitor(timeouts: watch.timeouts, now: now)
            switch watch.phase {
            case .resumed(let lsn): monitor.start(atLSN: lsn, at: now)
            case .syncing: monitor.startSync(at: now)
            }
            self.monitor = monitor
            update { _ in }
            check(context: context)
        case .sent(let lsn): update { $0.sent(throughLSN: lsn, at: now) }
        case .syncMoved: update { $0.progressed(at: now) }
        case .syncChunkSent:
            update {
                $0.sentHeartbeat(at: now)
                $0.progressed(at: now)
            }
        case .syncFinished(let cutLSN): update { $0.finishSync(throughLSN: cutLSN, at: now) }
        }
        promise?.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    private func stop() {
        timer?.cancel()
        timer = nil
        watch = nil
        monitor = nil
    }

    /// Changes the monitor and publishes when it would evict, for the duplicate-node check.
    private func update(_ change: (inout LivenessMonitor) -> Void) {
        guard var monitor, let watch else { return }
        change(&monitor)
        self.monitor = monitor
        watch.view.publish(monitor.evictionDeadline)
    }

    /// Heartbeats on an idle link; eviction on a missing ack or silence (Docs/Semantics.md, "Liveness").
    private func check(context: ChannelHandlerContext) {
        guard let watch, let monitor else { return }
        let now = watch.now()
        switch monitor.check(at: now) {
        case .none:
            break
        case .sendHeartbeat:
            update { $0.sentHeartbeat(at: now) }
            let heartbeat = Heartbeat(leaderLSN: watch.leaderLSN(), sentAtNanoseconds: UInt64(DispatchTimeNanoseconds.now()))
            context.writeAndFlush(wrapOutboundOut(WireMessage.heartbeat(heartbeat).encoded(using: context.channel.allocator)), promise: nil)
        case .evict(let reason):
            let syncing = monitor.isSyncing
            stop()
            watch.evict(reason, syncing)
            return
        }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(watch.tick)) { [self] in
            check(context: context)
        }
    }
}

/// What a follower's tasks tell its ``LivenessHandler``.
enum LivenessEvent: Sendable {
    /// The follower was admitted: watch it from now on.
    case start(Watch)
    /// Data frames through this LSN were written to the socket.
    case sent(throughLSN: UInt64)
    /// The full sync moved: the leader read its own files for it, or retried its cut.
    case syncMoved
    /// A chunk of the full sync was written to the socket (the follower consumed one).
    case syncChunkSent
    /// The full sync's files are sent: the follower owes an ack of the cut.
    case syncFinished(cutLSN: UInt64)

    struct Watch: Sendable {
        enum Phase: Sendable {
            /// Streaming from the backlog after this LSN.
            case resumed(atLSN: UInt64)
            case syncing
        }

        var phase: Phase
        var timeouts: LivenessMonitor.Timeouts
        /// How often the monitor is checked.
        var tick: Duration
        /// Where the handler publishes when it would evict.
        var view: LivenessView
        /// The leader's last LSN, for a heartbeat.
        var leaderLSN: @Sendable () -> UInt64
        /// Evicts the follower for this reason; the flag says whether it was in a full sync.
        var evict: @Sendable (EvictionReason, Bool) -> Void
        /// The clock the handler reads: the real one, or a test's.
        var now: @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    }

    /// The clock of a watch being started; the real one for every other event (which only
    /// arrives once a watch runs, and then reads the watch's clock).
    fileprivate var now: @Sendable () -> ContinuousClock.Instant {
        if case .start(let watch) = self { return watch.now }
        return { ContinuousClock.now }
    }
}

/// Whether a follower still counts as alive, readable from any thread: a second connection
/// with its node id is refused while the first is alive.
final class LivenessView: Sendable {
    private static let origin = ContinuousClock.now
    /// Nanoseconds after `origin` at which the monitor would evict.
    private let evictionDeadline: Atomic<Int64>

    /// A follower just admitted counts as alive for `heartbeatTimeout`, until its handler
    /// publishes what it has seen.
    init(aliveFor duration: Duration, from now: ContinuousClock.Instant) {
        evictionDeadline = Atomic(Self.nanoseconds(now + duration))
    }

    func publish(_ deadline: ContinuousClock.Instant) {
        evictionDeadline.store(Self.nanoseconds(deadline), ordering: .relaxed)
    }

    func isAlive(at now: ContinuousClock.Instant) -> Bool {
        Self.nanoseconds(now) < evictionDeadline.load(ordering: .relaxed)
    }

    private static func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = (instant - origin).components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
