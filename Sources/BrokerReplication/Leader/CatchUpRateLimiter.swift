import Synchronization

/// A token bucket: `bytesPerSecond` on average, with a burst of a tenth of a second's worth.
///
/// A pure value: it is given the time. A take larger than what the bucket holds is allowed
/// and leaves it in debt, so a frame of any size goes through and the next ones wait for it.
struct TokenBucket: Sendable {
    let bytesPerSecond: Double
    let burstBytes: Double
    private var tokens: Double
    private var updatedAt: ContinuousClock.Instant

    init(bytesPerSecond: Int, now: ContinuousClock.Instant) {
        self.bytesPerSecond = Double(bytesPerSecond)
        self.burstBytes = max(Double(bytesPerSecond) / 10, 64 * 1024)
        self.tokens = burstBytes
        self.updatedAt = now
    }

    /// Takes `bytes` now and returns how long the caller waits before it sends them.
    mutating func take(_ bytes: Int, now: ContinuousClock.Instant) -> Duration {
        let elapsed = now - updatedAt
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burstBytes, tokens + seconds * bytesPerSecond)
        updatedAt = now
        tokens -= Double(bytes)
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64((-tokens / bytesPerSecond * 1e9).rounded(.up)))
    }
}

/// Paces catch-up traffic, full syncs and resumes from the backlog, to the configuration's
/// `catchUpBytesPerSecond` across all followers together, so a rejoining follower cannot
/// starve the live stream to the others. Unlimited when that is nil.
final class CatchUpRateLimiter: Sendable {
    private let bucket: Mutex<TokenBucket?>
    let isLimited: Bool

    init(bytesPerSecond: Int?) {
        bucket = Mutex(bytesPerSecond.map { TokenBucket(bytesPerSecond: $0, now: .now) })
        isLimited = bytesPerSecond != nil
    }

    /// Waits until `bytes` more catch-up bytes may go out.
    /// - Parameter waiting: called about every 100 ms of waiting: the wait is the leader's
    ///   doing, so a full sync counts it as progress.
    func pace(_ bytes: Int, waiting: () -> Void = {}) async throws {
        guard isLimited else { return }
        var wait = bucket.withLock { $0?.take(bytes, now: .now) ?? .zero }
        while wait > .zero {
            let step = min(wait, .milliseconds(100))
            try await Task.sleep(for: step)
            wait -= step
            waiting()
        }
    }
}
