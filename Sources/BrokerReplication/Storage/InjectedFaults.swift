import Synchronization

/// Flush failures a test asks one data directory to report.
///
/// A real failing fsync needs a failing block device (device mapper, a dying disk), which a
/// test machine usually cannot make; everything around the flush (what the follower does
/// when it fails) is real. Nothing outside the tests sets it, and an unset one costs one
/// atomic load per flush.
final class InjectedFaults: Sendable {
    private let failingFlushes = Atomic<Int>(0)

    init() {}

    /// The next `count` flushes of the file system fail with EIO.
    func failNextFlushes(_ count: Int) {
        failingFlushes.store(count, ordering: .sequentiallyConsistent)
    }

    /// True when this flush is to fail (and counts it).
    func takeFlushFailure() -> Bool {
        guard failingFlushes.load(ordering: .relaxed) > 0 else { return false }
        return failingFlushes.wrappingSubtract(1, ordering: .sequentiallyConsistent).oldValue > 0
    }
}
