import Logging
import Synchronization

/// Logs a repeating warning at most once per `interval` per key, and says how many were
/// held back: a follower retrying every second, or a coordinator failing every 20 ms, must not
/// flood the log (nor go quiet: the first occurrence always shows).
package final class RateLimitedLog: Sendable {
    private let interval: Duration
    private let entries = Mutex<[String: Entry]>([:])

    private struct Entry {
        var lastLogged: ContinuousClock.Instant
        var suppressed: Int
    }

    package init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    /// Logs `message` now, or counts it when `key` was logged within the interval.
    package func log(
        _ logger: Logger, _ level: Logger.Level, _ message: Logger.Message, key: String, metadata: Logger.Metadata = [:]
    ) {
        let now = ContinuousClock.now
        let suppressed = entries.withLock { entries -> Int? in
            if var entry = entries[key], now - entry.lastLogged < interval {
                entry.suppressed += 1
                entries[key] = entry
                return nil
            }
            let held = entries[key]?.suppressed ?? 0
            entries[key] = Entry(lastLogged: now, suppressed: 0)
            return held
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressedSinceLast"] = "\(suppressed)" }
        logger.log(level: level, message, metadata: metadata)
    }
}
