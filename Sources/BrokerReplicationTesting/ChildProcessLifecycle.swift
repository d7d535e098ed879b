import Subprocess

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a child process stands, and what a test's request means in each phase. A
/// ``ChildProcess`` starts its child in a task of its own, so its pid arrives a moment after
/// `init`: a signal sent before that waits for it, and nothing is sent once the child ended
/// (its pid may already belong to another process).
struct ChildProcessLifecycle {
    enum Phase {
        case launching(pendingSignals: [Int32])
        case running(pid: pid_t)
        /// nil: the child could not be started.
        case ended(TerminationStatus?)
    }

    private(set) var phase = Phase.launching(pendingSignals: [])
    /// Ended by ``ended(_:)``: one per ``ChildProcess/waitForExit(timeout:)`` under way.
    private var exitWaiters: [AsyncStream<Never>.Continuation] = []

    var isRunning: Bool {
        if case .ended = phase { false } else { true }
    }

    var processIdentifier: pid_t? {
        if case .running(let pid) = phase { pid } else { nil }
    }

    /// The exit status, or nil while the child runs, or when a signal ended it.
    var exitStatus: Int32? {
        if case .ended(.exited(let code)?) = phase { code } else { nil }
    }

    /// A signal to send: the pid to send it to now, or nil (kept for the launch, or dropped
    /// because the child ended).
    mutating func signal(_ number: Int32) -> pid_t? {
        switch phase {
        case .launching(let pending):
            phase = .launching(pendingSignals: pending + [number])
            return nil
        case .running(let pid):
            return pid
        case .ended:
            return nil
        }
    }

    /// The child started: the signals asked for meanwhile, to send now.
    mutating func launched(pid: pid_t) -> [Int32] {
        guard case .launching(let pending) = phase else { return [] }
        phase = .running(pid: pid)
        return pending
    }

    /// The child ended (or never started): the waiters to wake.
    mutating func ended(_ status: TerminationStatus?) -> [AsyncStream<Never>.Continuation] {
        phase = .ended(status)
        defer { exitWaiters = [] }
        return exitWaiters
    }

    /// A stream that ends when the child does; nil when it already has.
    mutating func exitStream() -> AsyncStream<Never>? {
        guard isRunning else { return nil }
        let (stream, continuation) = AsyncStream<Never>.makeStream()
        exitWaiters.append(continuation)
        return stream
    }
}
