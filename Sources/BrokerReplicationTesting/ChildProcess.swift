import Foundation
import Subprocess
import Synchronization

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

/// A child process whose stdout and stderr go to a log file: a `replication-node`, a
/// `mini-broker` or an etcd in a test.
///
/// swift-subprocess starts it and reaps it: `run` returns with the termination status when
/// the child ends, so nothing polls. `init` is synchronous for tests that start processes from
/// synchronous helpers; the child starts in a task of its own.
public final class ChildProcess: Sendable {
    /// Where the child's output goes.
    public let logPath: String
    private let lifecycle = Mutex(ChildProcessLifecycle())

    /// Starts `executable` with `arguments`, its output truncating `logPath`.
    ///
    /// - Throws: ``ChildProcessError`` when the log file cannot be created. A child that cannot
    ///   be started ends at once, and the log says why.
    public init(executable: String, arguments: [String], logPath: String) throws {
        self.logPath = logPath
        let log: FileDescriptor
        do {
            log = try FileDescriptor.open(
                FilePath(logPath), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead]
            )
        } catch {
            throw ChildProcessError("cannot create \(logPath): \(error)")
        }
        Task { await self.run(executable, arguments: arguments, log: log) }
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
            if let handle = FileHandle(forWritingAtPath: logPath) {
                handle.seekToEndOfFile()
                handle.write(Data("ChildProcess: could not start \(path): \(error)\n".utf8))
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
    public var isRunning: Bool { lifecycle.withLock { $0.isRunning } }

    /// The child's pid once it started, nil before and after.
    public var processIdentifier: pid_t? { lifecycle.withLock { $0.processIdentifier } }

    /// The exit status once the child exited; nil while it runs or when a signal ended it.
    public var exitStatus: Int32? { lifecycle.withLock { $0.exitStatus } }

    /// How the child ended, for failure messages.
    public var termination: String {
        switch lifecycle.withLock({ $0.phase }) {
        case .launching, .running: "still running"
        case .ended(let status?): "\(status)"
        case .ended(nil): "never started"
        }
    }

    /// Sends `number` (SIGSTOP, SIGCONT, SIGTERM, SIGKILL…); one sent before the child started
    /// is sent once it has, and one sent after it ended is dropped.
    public func send(signal number: Int32) {
        guard let pid = lifecycle.withLock({ $0.signal(number) }) else { return }
        _ = kill(pid, number)
    }

    /// Waits up to `timeout` for the child to exit; its exit status, or nil if it still runs
    /// or died from a signal.
    public func waitForExit(timeout: Duration) async throws -> Int32? {
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

    /// Kills the child and blocks until it is dead, for synchronous clean-up (a `defer`, a
    /// `deinit`). It waits in the kernel (`waitid` without reaping; swift-subprocess reaps),
    /// not on a task, so it cannot wait for a thread it is itself blocking.
    public func killAndWait() {
        send(signal: SIGKILL)
        guard let pid = processIdentifier else { return }
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1, errno == EINTR {}
    }
}

/// A child process could not be set up.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
