import Logging
import Synchronization

/// Logs a repeating warning at most once per `interval` per key, and says how many were
/// held back: a follower retrying every second, or a coordinator failing every 20 ms, must not
/// flood the log (nor go quiet: the first occurrence always shows).
///
/// Keys may carry what an unauthenticated peer sent (a refused follower's cluster or node
/// id), so the table is bounded: a key not logged for longer than the interval may be
/// dropped when room is needed, and while `maximumKeys` keys are all recent, every new key
/// shares one line per interval, marked `rateLimitedKeysFull`, instead of getting an entry.
final class RateLimitedLog: Sendable {
    static let defaultMaximumKeys = 256

    private let maximumKeys: Int
    private let table: Mutex<Table>

    init(interval: Duration = .seconds(10), maximumKeys: Int = RateLimitedLog.defaultMaximumKeys) {
        precondition(maximumKeys >= 1, "a rate-limited log keeps at least one key")
        self.maximumKeys = maximumKeys
        self.table = Mutex(Table(interval: interval, maximumKeys: maximumKeys))
    }

    /// Keys kept now (at most `maximumKeys`).
    var keyCount: Int { table.withLock { $0.entries.count } }

    /// Logs `message` now, or counts it when `key` was logged within the interval.
    func log(
        _ logger: Logger, _ level: Logger.Level, _ message: Logger.Message, key: String, metadata: Logger.Metadata = [:]
    ) {
        let now = ContinuousClock.now
        guard case .log(let suppressed, let shared) = table.withLock({ $0.occurrence(of: key, at: now) }) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressedSinceLast"] = "\(suppressed)" }
        if shared { metadata["rateLimitedKeysFull"] = "\(maximumKeys)" }
        logger.log(level: level, message, metadata: metadata)
    }

    struct Entry {
        var lastLogged: ContinuousClock.Instant
        var suppressed: Int
    }

    /// The keys, and whether each occurrence is logged.
    struct Table {
        let interval: Duration
        let maximumKeys: Int
        var entries: [String: Entry] = [:]
        /// The line that new keys share while the table is full of recent ones.
        var shared: Entry?
        /// No entry was logged before this: until it is an interval old, nothing can be dropped.
        var oldestLogged: ContinuousClock.Instant?

        enum Decision: Equatable {
            case hold
            /// `shared`: the line stands for every new key while the table is full.
            case log(suppressed: Int, shared: Bool)
        }

        mutating func occurrence(of key: String, at now: ContinuousClock.Instant) -> Decision {
            if let index = entries.index(forKey: key) {
                return Self.occurrence(of: &entries.values[index], at: now, interval: interval).map { .log(suppressed: $0, shared: false) } ?? .hold
            }
            if entries.count >= maximumKeys { dropExpired(at: now) }
            if entries.count < maximumKeys {
                entries[key] = Entry(lastLogged: now, suppressed: 0)
                if oldestLogged == nil { oldestLogged = now }
                return .log(suppressed: 0, shared: false)
            }
            guard var line = shared else {
                shared = Entry(lastLogged: now, suppressed: 0)
                return .log(suppressed: 0, shared: true)
            }
            defer { shared = line }
            return Self.occurrence(of: &line, at: now, interval: interval).map { .log(suppressed: $0, shared: true) } ?? .hold
        }

        /// Counts an occurrence within the interval (nil); otherwise starts a new interval and
        /// returns how many were held back in the last.
        private static func occurrence(of entry: inout Entry, at now: ContinuousClock.Instant, interval: Duration) -> Int? {
            if now - entry.lastLogged < interval {
                entry.suppressed += 1
                return nil
            }
            defer { entry = Entry(lastLogged: now, suppressed: 0) }
            return entry.suppressed
        }

        /// Drops the keys not logged for longer than the interval: the next occurrence of one
        /// would be logged anyway, only without the count it held back.
        private mutating func dropExpired(at now: ContinuousClock.Instant) {
            guard let oldest = oldestLogged, now - oldest >= interval else { return }
            entries = entries.filter { now - $0.value.lastLogged < interval }
            oldestLogged = entries.values.lazy.map(\.lastLogged).min()
        }
    }
}
