import Synchronization

/// The leader's local writes in progress, so that a disk that stalls is seen while it stalls:
/// a write that never returns reports nothing, but its start time here keeps ageing.
/// A ``ClusterNode`` resigns when the oldest one exceeds its `writeStallLimit`, or when one
/// took that long and finished before it looked: a stalled write can hold the thread the
/// check would run on, so the check must not depend on seeing the stall while it lasts.
final class LocalWriteWatch: Sendable {
    private struct Started {
        var next: UInt64 = 0
        var writes: [UInt64: ContinuousClock.Instant] = [:]
        /// The longest write that finished since ``takeLongestFinished()`` last ran.
        var longestFinished: Duration = .zero
    }

    private let started = Mutex(Started())

    /// Runs one local write (a `pwrite`, an fsync, a rename), recording it while it runs.
    func measure<T, E: Error>(_ write: () throws(E) -> T) throws(E) -> T {
        let now = ContinuousClock.now
        let id = started.withLock { state in
            state.next += 1
            state.writes[state.next] = now
            return state.next
        }
        defer {
            let end = ContinuousClock.now
            started.withLock { state in
                if let start = state.writes.removeValue(forKey: id) { state.longestFinished = max(state.longestFinished, end - start) }
            }
        }
        return try write()
    }

    /// The longest write that finished since the last call (zero when none), and starts over.
    func takeLongestFinished() -> Duration {
        started.withLock { state in
            defer { state.longestFinished = .zero }
            return state.longestFinished
        }
    }

    /// How long the oldest write in progress has run so far; nil when none runs.
    func oldestAge(at now: ContinuousClock.Instant) -> Duration? {
        started.withLock { $0.writes.values.min() }.map { now - $0 }
    }
}
