/// Holds one producer to a fixed rate (`--rate`): each byte has a time from which it may go,
/// `bytesPerSecond` after the one before, and the producer waits until then.
///
/// A producer that fell behind (the leader held it up) catches up at full speed, but by at
/// most `catchUpSeconds` of bytes: a long stall is not followed by a flood that no broker's
/// clients would send.
struct Pacer: Sendable {
    private let nanosecondsPerByte: Double
    private let catchUpNanoseconds: Double
    /// When the next byte may go, on the monotonic clock.
    private var nextNanoseconds: Double

    init(bytesPerSecond: Double, startNanoseconds: UInt64, catchUpSeconds: Double = 0.1) {
        precondition(bytesPerSecond > 0, "a rate above 0 bytes per second")
        nanosecondsPerByte = 1e9 / bytesPerSecond
        catchUpNanoseconds = catchUpSeconds * 1e9
        nextNanoseconds = Double(startNanoseconds)
    }

    /// Counts `bytes` sent at `now`, and returns how long to wait before sending more, in
    /// nanoseconds (0: at once).
    mutating func delay(afterSending bytes: Int, now: UInt64) -> UInt64 {
        nextNanoseconds = max(nextNanoseconds, Double(now) - catchUpNanoseconds) + Double(bytes) * nanosecondsPerByte
        return nextNanoseconds > Double(now) ? UInt64(nextNanoseconds - Double(now)) : 0
    }
}
