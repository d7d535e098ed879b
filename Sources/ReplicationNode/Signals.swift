import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns SIGTERM and SIGINT into cancelling the node's top-level task.
///
/// The first signal cancels the task, so the leader or follower closes its connections and the
/// process exits with status 0. If that takes longer than the grace period, or a second
/// signal arrives, the process exits at once with status 1, so a stuck shutdown is visible.
enum TerminationSignals {
    /// Runs `body` in a task that SIGTERM or SIGINT cancels.
    ///
    /// - Returns: normally when `body` returns, or when it ended with `CancellationError`
    ///   after a signal.
    /// - Throws: whatever else `body` throws.
    static func run(logger: Logger, grace: Duration = .seconds(8), _ body: @escaping @Sendable () async throws -> Void) async throws {
        let work = Task { try await body() }
        let received = SignalState()
        let queue = DispatchQueue(label: "replication-node.signals")
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            // Ignore the default action first, so the dispatch source sees the signal instead.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                let name = signalNumber == SIGTERM ? "SIGTERM" : "SIGINT"
                guard received.first(signalNumber) else {
                    logger.error("second signal; exiting now", metadata: ["signal": "\(name)"])
                    exit(1)
                }
                logger.info("shutting down", metadata: ["signal": "\(name)"])
                work.cancel()
                let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
                queue.asyncAfter(deadline: .now() + seconds) {
                    logger.error("shutdown did not finish within the grace period; exiting", metadata: ["graceSeconds": "\(seconds)"])
                    exit(1)
                }
            }
            source.resume()
            sources.append(source)
        }
        defer { for source in sources { source.cancel() } }
        do {
            try await work.value
        } catch is CancellationError where received.signalled {
            // Cancelled by a signal: a clean shutdown.
        }
        if received.signalled { logger.info("stopped") }
    }
}

/// Which termination signal arrived first, if any.
private final class SignalState: Sendable {
    private let signalNumber = Mutex<Int32?>(nil)

    /// Records `number`; true when it is the first signal.
    func first(_ number: Int32) -> Bool {
        signalNumber.withLock { received in
            if received != nil { return false }
            received = number
            return true
        }
    }

    var signalled: Bool { signalNumber.withLock { $0 != nil } }
}

/// SIGUSR1, the request to promote a follower, as an async sequence.
enum PromotionSignal {
    /// Each SIGUSR1 from now on, until the sequence's consumer stops.
    static func requests() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        signal(SIGUSR1, SIG_IGN)
        // Cancelled only from onTermination; DispatchSource is thread-safe.
        nonisolated(unsafe) let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: DispatchQueue(label: "replication-node.promotion"))
        source.setEventHandler { continuation.yield() }
        source.resume()
        continuation.onTermination = { _ in source.cancel() }
        return stream
    }
}
