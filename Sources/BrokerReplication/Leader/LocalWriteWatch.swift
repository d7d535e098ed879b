import Synchronization

/// The leader's local writes in progress, so that a disk that stalls is seen while it stalls:
/// a write that never returns reports nothing, but its start time here keeps ageing.
/// A ``ClusterNode`` resigns when the oldest one exceeds its `writeStallLimit`.
final class LocalWriteWatch: Sendable {
    private struct Started {
        var next: UInt64 = 0
        var writes: [UInt64: ContinuousClock.Instant] = [:]
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
        defer { _ = started.withLock { $0.writes.removeValue(forKey: id) } }
        return try write()
    }

    /// How long the oldest write in progress has run so far; nil when none runs.
    func oldestAge(at now: ContinuousClock.Instant) -> Duration? {
        started.withLock { $0.writes.values.min() }.map { now - $0 }
    }
}
