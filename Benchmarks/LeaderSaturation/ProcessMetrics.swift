import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark process's own resource use. The leader, its producers and the
/// fault-injecting proxies all run in this process, so these are the leader's figures
/// (proxy included); the follower processes are not counted.
enum ProcessMetrics {
    /// Returns freed heap memory to the kernel and resets the peak resident set size
    /// (VmHWM) to the current one, so the next reading is this scenario's peak alone.
    static func resetPeakResidentBytes() {
        trimHeap()
        // "5" resets the peak RSS counter of the process (Linux 4.0 and later).
        if let clear = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            clear.write(Data("5".utf8))
            try? clear.close()
        }
    }

    /// glibc's `malloc_trim(0)` (not in the Glibc module map, so looked up at run time).
    private static func trimHeap() {
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }

    /// Peak resident set size since the last reset, in bytes (VmHWM from /proc/self/status).
    static func peakResidentBytes() -> Int { statusField("VmHWM:") }

    /// Current resident set size in bytes (VmRSS).
    static func residentBytes() -> Int { statusField("VmRSS:") }

    private static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// User plus system CPU seconds of this process so far (every thread).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

/// Nanoseconds on the monotonic clock: the cheapest clock read (vDSO), used around every append.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
