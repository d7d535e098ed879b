import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark process's own resource use, and by PID a follower process's. The leader,
/// its producers and the fault-injecting proxies all run in this process, so its figures are
/// the leader's (proxy included) and never count the follower processes.
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
    static func peakResidentBytes() -> Int { statusField("VmHWM:", of: "self") ?? 0 }

    /// Current resident set size in bytes (VmRSS).
    static func residentBytes() -> Int { statusField("VmRSS:", of: "self") ?? 0 }

    /// Another process's resident set size in bytes (VmRSS), nil once it is gone.
    static func residentBytes(of pid: pid_t) -> Int? { statusField("VmRSS:", of: "\(pid)") }

    /// This process's open file descriptors (entries of /proc/self/fd, less the one that
    /// reading the directory opens).
    static func openDescriptors() -> Int { (descriptorEntries(of: "self") ?? 1) - 1 }

    /// Another process's open file descriptors (entries of /proc/PID/fd), nil once it is gone.
    static func openDescriptors(of pid: pid_t) -> Int? { descriptorEntries(of: "\(pid)") }

    private static func descriptorEntries(of process: String) -> Int? {
        guard let directory = opendir("/proc/\(process)/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            // Every name but "." and ".." is a descriptor number.
            let isDescriptor = withUnsafeBytes(of: entry.pointee.d_name) { $0.first.map { $0 != UInt8(ascii: ".") } ?? false }
            if isDescriptor { count += 1 }
        }
        return count
    }

    private static func statusField(_ name: String, of process: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
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
