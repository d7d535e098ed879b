import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Flush failures and stalled writes a test asks one data directory for.
///
/// A real failing fsync or a hung disk needs a failing block device (device mapper, a dying
/// disk), which a test machine usually cannot make; everything around them (what the
/// follower does when a flush fails, what a cluster node does when its leader's disk hangs)
/// is real. Nothing outside the tests sets them, and an unset one costs one atomic load per
/// flush or leader append.
final class InjectedFaults: Sendable {
    private let failingFlushes = Atomic<Int>(0)
    private let writeStallMilliseconds = Atomic<Int>(0)

    /// The leader's next append blocks its thread for `milliseconds` before writing, as a
    /// write to a hung disk would.
    func stallNextWrite(milliseconds: Int) {
        writeStallMilliseconds.store(milliseconds, ordering: .sequentiallyConsistent)
    }

    /// Blocks for the stall a test asked for, if any (once).
    func stallIfAsked() {
        guard writeStallMilliseconds.load(ordering: .relaxed) > 0 else { return }
        let milliseconds = writeStallMilliseconds.exchange(0, ordering: .sequentiallyConsistent)
        if milliseconds > 0 { usleep(UInt32(milliseconds) * 1000) }
    }

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
