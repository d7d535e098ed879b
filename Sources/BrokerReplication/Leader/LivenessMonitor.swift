import NIOCore
import Synchronization

/// Decides when a follower has gone silent: a pure state machine, fed with what was sent and
/// heard and asked what to do at a given time (Docs/Semantics.md, "Liveness").
struct LivenessMonitor: Sendable {
    struct Timeouts: Hashable, Sendable {
        /// Outstanding data with no ack progress for this long evicts the follower.
        var ackTimeout: Duration
        /// An idle link gets a heartbeat this often.
        var heartbeatInterval: Duration
        /// Nothing heard from the follower (no ack, no heartbeat reply) for this long evicts it.
        var heartbeatTimeout: Duration
    }

    enum Action: Equatable, Sendable {
        case none
        case sendHeartbeat
        case evict(EvictionReason)
    }

    let timeouts: Timeouts
    private var lastSentLSN: UInt64 = 0
    private var lastAckedLSN: UInt64 = 0
    private var outstandingSince: ContinuousClock.Instant?
    private var lastSentAt: ContinuousClock.Instant
    private var lastHeardAt: ContinuousClock.Instant
    /// During a full sync no acks are due, and hearing from the follower is not enough: it is
    /// alive while bytes move (see ``progressed(at:)``).
    private(set) var isSyncing = false
    private var lastProgressAt: ContinuousClock.Instant
    /// The highest bytes-checked plus bytes-received total the follower has reported.
    private var reportedBytes: UInt64 = 0

    init(timeouts: Timeouts, now: ContinuousClock.Instant) {
        self.timeouts = timeouts
        self.lastSentAt = now
        self.lastHeardAt = now
        self.lastProgressAt = now
    }

    /// A full sync starts: from now on until ``finishSync(throughLSN:at:)`` only progress counts.
    mutating func startSync(at now: ContinuousClock.Instant) {
        isSyncing = true
        lastProgressAt = now
    }

    /// The sync's files are sent: the follower now owes an ack of the cut, as for any data.
    mutating func finishSync(throughLSN cutLSN: UInt64, at now: ContinuousClock.Instant) {
        isSyncing = false
        lastHeardAt = max(lastHeardAt, lastProgressAt)
        sent(throughLSN: cutLSN, at: now)
    }

    /// The sync moved: the leader read its own files for it, or the follower consumed a chunk.
    mutating func progressed(at now: ContinuousClock.Instant) {
        lastProgressAt = now
    }

    /// The follower reported how far it got; it counts as progress only if the total grew.
    mutating func followerReported(bytes: UInt64, at now: ContinuousClock.Instant) {
        lastHeardAt = now
        if bytes > reportedBytes {
            reportedBytes = bytes
            lastProgressAt = now
        }
    }

    mutating func sent(throughLSN lsn: UInt64, at now: ContinuousClock.Instant) {
        lastSentAt = now
        if lsn > lastSentLSN {
            lastSentLSN = lsn
            if outstandingSince == nil, lastSentLSN > lastAckedLSN { outstandingSince = now }
        }
    }

    mutating func sentHeartbeat(at now: ContinuousClock.Instant) {
        lastSentAt = now
    }

    mutating func heard(at now: ContinuousClock.Instant) {
        lastHeardAt = now
    }

    mutating func acked(_ lsn: UInt64, at now: ContinuousClock.Instant) {
        lastHeardAt = now
        guard lsn > lastAckedLSN else { return }
        lastAckedLSN = lsn
        outstandingSince = lastAckedLSN >= lastSentLSN ? nil : now
    }

    /// Marks everything through `lsn` as sent and acked (the follower resumed from there).
    mutating func start(atLSN lsn: UInt64, at now: ContinuousClock.Instant) {
        lastSentLSN = max(lastSentLSN, lsn)
        lastAckedLSN = max(lastAckedLSN, lsn)
        outstandingSince = lastAckedLSN >= lastSentLSN ? nil : now
        lastHeardAt = now
    }

    /// False once ``check(at:)`` would evict.
    func isAlive(at now: ContinuousClock.Instant) -> Bool {
        now < evictionDeadline
    }

    /// When ``check(at:)`` starts to evict, unless something is heard, acked or moves first.
    var evictionDeadline: ContinuousClock.Instant {
        if isSyncing { return lastProgressAt + timeouts.heartbeatTimeout }
        let silence = lastHeardAt + timeouts.heartbeatTimeout
        guard let since = outstandingSince else { return silence }
        return min(silence, since + timeouts.ackTimeout)
    }

    func check(at now: ContinuousClock.Instant) -> Action {
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
