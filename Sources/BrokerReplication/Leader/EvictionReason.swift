/// Why a leader let a follower go.
///
/// It encodes as its raw value (`"queue-full"`), also as a dictionary key, as in
/// ``LeaderStatus/evictions``.
public enum EvictionReason: String, Hashable, Sendable, Codable, CodingKeyRepresentable, CustomStringConvertible {
    /// Its bounded outbound queue was full: it fell too far behind.
    case queueFull = "queue-full"
    /// It had outstanding data and did not ack for `ackTimeout`.
    case ackTimeout = "ack-timeout"
    /// Nothing was heard from it for `heartbeatTimeout`.
    case heartbeatTimeout = "heartbeat-timeout"
    /// It sent bytes the leader refused (see the logged wire error).
    case decodeError = "decode-error"
    /// It failed the handshake, or sent a frame whose authentication tag did not verify.
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

    /// The raw value, e.g. `queue-full`, as in logs, metrics labels and the JSON encoding.
    public var description: String { rawValue }
}
