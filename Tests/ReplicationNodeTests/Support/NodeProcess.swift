import Foundation
import Subprocess
import Synchronization
import Testing

#if canImport(System)
import System
#else
import SystemPackage
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process (`replication-node` unless told otherwise) whose output goes to a log file.
///
/// swift-subprocess starts it and reaps it: `run` returns with the termination status when
/// the child ends, so nothing polls. `init` stays synchronous for the tests that start
/// nodes from synchronous helpers; the child starts in a task of its own.
final class NodeProcess: Sendable {
    let name: String
    let logPath: String
    private let lifecycle = Mutex(NodeProcessLifecycle())

    /// Starts `executable` (next to this test bundle) with `arguments`; its stderr and stdout
    /// go to `directory/name.log`.
    init(_ name: String, arguments: [String], directory: String, executable: String = "replication-node") throws {
        self.name = name
        self.logPath = directory + "/\(name).log"
        // SwiftPM builds every executable the test target depends on into one directory.
        let path = try Self.binary().deletingLastPathComponent().appendingPathComponent(executable).path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw NodeTestError("\(path) is not an executable") }
        let log: FileDescriptor
        do {
            log = try FileDescriptor.open(
                FilePath(logPath), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead]
            )
        } catch {
            throw NodeTestError("cannot create \(logPath): \(error)")
        }
        Task { await self.run(path, arguments: arguments, log: log) }
    }

    /// Runs the child until it ends, then records how it ended.
    private func run(_ path: String, arguments: [String], log: FileDescriptor) async {
        var status: TerminationStatus?
        do {
            let result = try await Subprocess.run(
                .path(FilePath(path)), arguments: Arguments(arguments), input: .none,
                output: .fileDescriptor(log, closeAfterSpawningProcess: true), error: .combinedWithOutput
            ) { execution in
                launched(pid: execution.processIdentifier.value)
            }
            status = result.terminationStatus
        } catch {
            try? log.close()
            let line = "NodeProcess: could not start \(path): \(error)\n"
            if let handle = FileHandle(forWritingAtPath: logPath) {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                try? handle.close()
            }
        }
        let waiters = lifecycle.withLock { $0.ended(status) }
        for waiter in waiters { waiter.finish() }
    }

    private func launched(pid: pid_t) {
        let pending = lifecycle.withLock { $0.launched(pid: pid) }
        for number in pending { _ = kill(pid, number) }
    }

    /// Whether the child runs (or is being started).
    var isRunning: Bool { lifecycle.withLock { $0.isRunning } }

    /// The child's pid once it started, nil before and after.
    var processIdentifier: pid_t? { lifecycle.withLock { $0.processIdentifier } }

    /// The exit status once the child exited; nil while it runs or when a signal ended it.
    var exitStatus: Int32? { lifecycle.withLock { $0.exitStatus } }

    /// How the child ended, for failure messages.
    var termination: String {
        switch lifecycle.withLock({ $0.phase }) {
        case .launching, .running: "still running"
        case .ended(let status?): "\(status)"
        case .ended(nil): "never started"
        }
    }

    /// Kills the process if it still runs (for cleanup after a failed expectation).
    func killIfRunning() {
        if isRunning { send(signal: SIGKILL) }
    }

    /// Sends `number` (SIGSTOP, SIGCONT, SIGTERM, SIGKILL…); one sent before the child started
    /// is sent once it has, and one sent after it ended is dropped.
    func send(signal number: Int32) {
        guard let pid = lifecycle.withLock({ $0.signal(number) }) else { return }
        _ = kill(pid, number)
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or nil if it still runs
    /// or died from a signal.
    func waitForExit(timeout: Duration) async throws -> Int32? {
        if let exited = lifecycle.withLock({ $0.exitStream() }) {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { for await _ in exited {} }
                group.addTask { try? await Task.sleep(for: timeout) }
                await group.next()
                group.cancelAll()
            }
        }
        try Task.checkCancellation()
        return exitStatus
    }

    /// The last `lines` lines of the log, for failure messages.
    func logTail(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)"
        return "--- \(name) log (last \(lines) lines) ---\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// The built `replication-node`: next to the test bundle (SwiftPM builds it because the
    /// test target depends on it), or under `.build/debug` of this package.
    static func binary() throws -> URL {
        var candidates: [URL] = []
        for url in [Bundle.main.executableURL, Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])].compactMap({ $0 }) {
            var directory = url.deletingLastPathComponent()
            for _ in 0..<3 {
                candidates.append(directory.appendingPathComponent("replication-node"))
                directory = directory.deletingLastPathComponent()
            }
        }
        // This file is Tests/ReplicationNodeTests/Support/NodeProcess.swift in the package.
        var packageRoot = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { packageRoot = packageRoot.deletingLastPathComponent() }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/replication-node"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) && !candidate.hasDirectoryPath {
            return candidate
        }
        throw NodeTestError("replication-node not found; looked at \(candidates.map(\.path))")
    }
}

struct NodeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A port that was free a moment ago: bind 127.0.0.1:0, read the port, close the socket.
func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let streamSocket = Int32(SOCK_STREAM.rawValue)
    #else
    let streamSocket = SOCK_STREAM
    #endif
    let descriptor = socket(AF_INET, streamSocket, 0)
    guard descriptor >= 0 else { throw NodeTestError("socket() failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
        }
    }
    guard bound else { throw NodeTestError("bind/getsockname failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Every regular file under `root` (relative path → bytes), leaving out the `.brpl` folder.
func dataFiles(under root: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let rootURL = URL(fileURLWithPath: root)
    guard let enumerator = FileManager.default.enumerator(atPath: root) else { throw NodeTestError("cannot list \(root)") }
    while let relative = enumerator.nextObject() as? String {
        if relative == ".brpl" || relative.hasPrefix(".brpl/") {
            enumerator.skipDescendants()
            continue
        }
        let url = rootURL.appendingPathComponent(relative)
        let values = try url.resourceValues(forKeys: [.isRegularFileKey])
        if values.isRegularFile == true { files[relative] = try Data(contentsOf: url) }
    }
    return files
}
