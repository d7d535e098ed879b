import NIOCore
import Synchronization

/// Decides when a follower has gone silent: a pure state machine, fed with what was sent and
/// heard and asked what to do at a given time (Docs/Semantics.md, "Liveness").
package struct LivenessMonitor: Sendable {
    package struct Timeouts: Hashable, Sendable {
        /// Outstanding data with no ack progress for this long evicts the follower.
        package var ackTimeout: Duration
        /// An idle link gets a heartbeat this often.
        package var heartbeatInterval: Duration
        /// Nothing heard from the follower (no ack, no heartbeat reply) for this long evicts it.
        package var heartbeatTimeout: Duration
    }

    package enum Action: Equatable, Sendable {
        case none
        case sendHeartbeat
        case evict(EvictionReason)
    }

    package let timeouts: Timeouts
    private var lastSentLSN: UInt64 = 0
    private var lastAckedLSN: UInt64 = 0
    private var outstandingSince: ContinuousClock.Instant?
    private var lastSentAt: ContinuousClock.Instant
    private var lastHeardAt: ContinuousClock.Instant
    /// During a full sync no acks are due, and hearing from the follower is not enough: it is
    /// alive while bytes move (see ``progressed(at:)``).
    package private(set) var isSyncing = false
    private var lastProgressAt: ContinuousClock.Instant
    /// The highest bytes-checked plus bytes-received total the follower has reported.
    private var reportedBytes: UInt64 = 0

    package init(timeouts: Timeouts, now: ContinuousClock.Instant) {
        self.timeouts = timeouts
        self.lastSentAt = now
        self.lastHeardAt = now
        self.lastProgressAt = now
    }

    /// A full sync starts: from now on until ``finishSync(throughLSN:at:)`` only progress counts.
    package mutating func startSync(at now: ContinuousClock.Instant) {
        isSyncing = true
        lastProgressAt = now
    }

    /// The sync's files are sent: the follower now owes an ack of the cut, as for any data.
    package mutating func finishSync(throughLSN cutLSN: UInt64, at now: ContinuousClock.Instant) {
        isSyncing = false
        lastHeardAt = max(lastHeardAt, lastProgressAt)
        sent(throughLSN: cutLSN, at: now)
    }

    /// The sync moved: the leader read its own files for it, or the follower consumed a chunk.
    package mutating func progressed(at now: ContinuousClock.Instant) {
        lastProgressAt = now
    }

    /// The follower reported how far it got; it counts as progress only if the total grew.
    package mutating func followerReported(bytes: UInt64, at now: ContinuousClock.Instant) {
        lastHeardAt = now
        if bytes > reportedBytes {
            reportedBytes = bytes
            lastProgressAt = now
        }
    }

    package mutating func sent(throughLSN lsn: UInt64, at now: ContinuousClock.Instant) {
        lastSentAt = now
        if lsn > lastSentLSN {
            lastSentLSN = lsn
            if outstandingSince == nil, lastSentLSN > lastAckedLSN { outstandingSince = now }
        }
    }

    package mutating func sentHeartbeat(at now: ContinuousClock.Instant) {
        lastSentAt = now
    }

    package mutating func heard(at now: ContinuousClock.Instant) {
        lastHeardAt = now
    }

    package mutating func acked(_ lsn: UInt64, at now: ContinuousClock.Instant) {
        lastHeardAt = now
        guard lsn > lastAckedLSN else { return }
        lastAckedLSN = lsn
        outstandingSince = lastAckedLSN >= lastSentLSN ? nil : now
    }

    /// Marks everything through `lsn` as sent and acked (the follower resumed from there).
    package mutating func start(atLSN lsn: UInt64, at now: ContinuousClock.Instant) {
        lastSentLSN = max(lastSentLSN, lsn)
        lastAckedLSN = max(lastAckedLSN, lsn)
        outstandingSince = lastAckedLSN >= lastSentLSN ? nil : now
        lastHeardAt = now
    }

    /// False once ``check(at:)`` would evict.
    package func isAlive(at now: ContinuousClock.Instant) -> Bool {
        if case .evict = check(at: now) { return false }
        return true
    }

    package func check(at now: ContinuousClock.Instant) -> Action {
        if isSyncing {
            // A follower that talks but consumes nothing is as stuck as a silent one.
            if now - lastProgressAt >= timeouts.heartbeatTimeout { return .evict(.heartbeatTimeout) }
        } else {
            if let since = outstandingSince, now - since >= timeouts.ackTimeout { return .evict(.ackTimeout) }
            if now - lastHeardAt >= timeouts.heartbeatTimeout { return .evict(.heartbeatTimeout) }
        }
        if now - lastSentAt >= timeouts.heartbeatInterval { return .sendHeartbeat }
        return .none
    }
}

/// Why a leader let a follower go.
public enum EvictionReason: String, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Its bounded outbound queue was full: it fell too far behind.
    case queueFull = "queue-full"
    /// It had outstanding data and did not ack for `ackTimeout`.
    case ackTimeout = "ack-timeout"
    /// Nothing was heard from it for `heartbeatTimeout`.
    case heartbeatTimeout = "heartbeat-timeout"
    /// It sent bytes the leader refused (see the logged wire error).
    case decodeError = "decode-error"
    /// It failed the handshake.
    case authentication
    /// It reported a disk error.
    case diskError = "disk-error"
    /// It needed records that are no longer in the backlog.
    case backlogExceeded = "backlog-exceeded"
    /// The leader could not send its full sync: a file it could not read, or no consistent
    /// cut within `fullSyncCutTimeout`.
    case fullSyncFailed = "full-sync-failed"
    /// The same node connected again; the older connection is dropped.
    case replaced
    /// The leader is shutting down.
    case shutdown

    public var description: String { rawValue }
}

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
    typealias InboundIn = Frame
    typealias InboundOut = Frame

    private let liveness = Mutex<SharedLiveness?>(nil)
    private let limits: WireLimits

    init(limits: WireLimits) {
        self.limits = limits
    }

    /// Starts feeding `monitor` (once the follower streams).
    func attach(_ monitor: SharedLiveness) {
        liveness.withLock { $0 = monitor }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let monitor = liveness.withLock({ $0 }) {
            let now = ContinuousClock.now
            switch frame.type {
            case .ack, .heartbeatReply, .syncProgress:
                // A malformed one is the connection task's to refuse; here it only counts as heard.
                switch try? WireMessage(decoding: frame, limits: limits) {
                case .ack(let lsn): monitor.withLock { $0.acked(lsn, at: now) }
                case .heartbeatReply(let reply) where reply.durableLSN > 0: monitor.withLock { $0.acked(reply.durableLSN, at: now) }
                case .syncProgress(let report):
                    monitor.withLock { $0.followerReported(bytes: report.bytesChecked &+ report.bytesReceived, at: now) }
                default: monitor.withLock { $0.heard(at: now) }
                }
            default:
                monitor.withLock { $0.heard(at: now) }
            }
        }
        context.fireChannelRead(data)
    }
}
