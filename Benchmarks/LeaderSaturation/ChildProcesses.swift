import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Every `replication-node` child process the benchmark has started and not yet reaped, so
/// that nothing outlives the benchmark: a failed scenario, an error, SIGINT, SIGTERM or a
/// crash of the benchmark itself kills them all.
enum ChildProcesses {
    /// Slots read by the crash handler, which may only call async-signal-safe functions: a
    /// plain array of pids (0 = free) that it walks without taking a lock.
    private static let slotCount = 64
    nonisolated(unsafe) private static let crashSlots: UnsafeMutablePointer<pid_t> = {
        let slots = UnsafeMutablePointer<pid_t>.allocate(capacity: slotCount)
        slots.initialize(repeating: 0, count: slotCount)
        return slots
    }()
    private static let registry = Mutex<[pid_t: Int]>([:])
    /// Temporary directories to remove when SIGINT or SIGTERM stops the benchmark.
    private static let directories = Mutex<Set<String>>([])

    /// Remembers a started child.
    static func register(_ pid: pid_t) {
        registry.withLock { registry in
            for slot in 0..<slotCount where crashSlots[slot] == 0 {
                crashSlots[slot] = pid
                registry[pid] = slot
                return
            }
            // More children than slots: still killed on every path but a crash.
            registry[pid] = -1
        }
    }

    /// Forgets a child that has exited.
    static func unregister(_ pid: pid_t) {
        registry.withLock { registry in
            if let slot = registry.removeValue(forKey: pid), slot >= 0 { crashSlots[slot] = 0 }
        }
    }

    /// Kills every registered child (SIGCONT first, so a stopped one can die) and forgets them.
    static func killAll() {
        let pids = registry.withLock { registry in
            defer {
                registry = [:]
                for slot in 0..<slotCount { crashSlots[slot] = 0 }
            }
            return Array(registry.keys)
        }
        for pid in pids {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
        }
    }

    static func addTemporaryDirectory(_ path: String) { _ = directories.withLock { $0.insert(path) } }
    static func removeTemporaryDirectory(_ path: String) {
        _ = directories.withLock { $0.remove(path) }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Installs the handlers: SIGINT and SIGTERM kill the children, remove the temporary
    /// directories and exit with 130 / 143; a crash (SIGSEGV, SIGBUS, SIGILL, SIGTRAP,
    /// SIGABRT, SIGFPE) kills the children and then dies as it would have.
    static func installHandlers() -> [any DispatchSourceSignal] {
        for signalNumber in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE] {
            signal(signalNumber) { received in
                for slot in 0..<ChildProcesses.slotCount {
                    let pid = ChildProcesses.crashSlots[slot]
                    if pid > 0 {
                        kill(pid, SIGCONT)
                        kill(pid, SIGKILL)
                    }
                }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
        var sources: [any DispatchSourceSignal] = []
        let queue = DispatchQueue(label: "leader-saturation.signals")
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                FileHandle.standardError.write(Data("\nleader-saturation: stopped by a signal; killing the follower processes and removing temporary files\n".utf8))
                killAll()
                for path in directories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
                exit(128 + signalNumber)
            }
            source.resume()
            sources.append(source)
        }
        // A failure that ends the process through exit() also takes the children along.
        atexit { ChildProcesses.killAll() }
        return sources
    }
}

/// One `replication-node follower` process; its stdout and stderr go to a log file, and its
/// status (`--status-file`) to a JSON file it rewrites every 200 ms.
final class FollowerProcess: @unchecked Sendable {
    let nodeID: String
    let logPath: String
    let statusPath: String
    private let process = Process()

    /// Starts `binary follower ... --status-file statusPath` with `arguments` before the status file.
    init(nodeID: String, binary: URL, arguments: [String], logPath: String, statusPath: String) throws {
        self.nodeID = nodeID
        self.logPath = logPath
        self.statusPath = statusPath
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw BenchmarkError("cannot create the log file \(logPath)")
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = binary
        process.arguments = ["follower"] + arguments + ["--status-file", statusPath]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        ChildProcesses.register(process.processIdentifier)
    }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func send(_ signalNumber: Int32) {
        if process.isRunning { kill(process.processIdentifier, signalNumber) }
    }

    /// SIGCONT (in case it is stopped), SIGTERM, then SIGKILL if it has not exited within
    /// `grace`; returns once it has exited (bounded by `grace` plus one second).
    func stop(grace: Duration = .seconds(5)) async {
        send(SIGCONT)
        send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            send(SIGKILL)
            let hardDeadline = ContinuousClock.now + .seconds(1)
            while process.isRunning, ContinuousClock.now < hardDeadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        ChildProcesses.unregister(process.processIdentifier)
    }

    /// User plus system CPU seconds the process has used so far (from /proc/PID/stat).
    func cpuSeconds() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = text.range(of: ") ", options: .backwards)
        else { return 0 }
        // Fields after the command name start at field 3 (state); utime and stime are 14 and 15.
        let fields = text[afterName.upperBound...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Group commits so far, one device flush each, from its status file (nil until the file
    /// exists). The file is up to 200 ms old; over a window of seconds that error is small.
    func groupCommits() -> Int? {
        struct Status: Decodable { var groupCommits: Int }
        guard let json = FileManager.default.contents(atPath: statusPath) else { return nil }
        return try? JSONDecoder().decode(Status.self, from: json).groupCommits
    }

    /// The last lines of its log, for error messages.
    func logTail(lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)"
        return "--- \(nodeID) log (last \(lines) lines) ---\n"
            + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
