import Dispatch
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a node's services in a `ServiceGroup` that SIGTERM and SIGINT shut down gracefully.
///
/// The group asks its services to stop one at a time, last one first, through
/// swift-service-lifecycle's graceful shutdown: a leader waits up to `shutdownTimeout` for its
/// followers to ack its last LSN, a follower commits and acks what it applied. The process then
/// exits with status 0.
///
/// The node watches the same two signals itself, for what the group does not do: it logs the
/// first one, exits at once with status 1 on a second one, and exits with status 1 when the
/// shutdown takes longer than the grace period, so that a stuck shutdown is visible. The
/// group's own escalation does not fit: its `cancellationSignals` must differ from the graceful
/// ones (a second SIGTERM would do nothing), and `maximumGracefulShutdownDuration` escalates to
/// cancellation, after which the process would still exit with status 0.
enum TerminationSignals {
    /// Longer than a leader's drain (`shutdownTimeout`, 5 s) and a follower's last group commit.
    static let gracePeriod: Duration = .seconds(8)

    /// Runs `services` until they end, or until a signal has shut them down.
    ///
    /// - Throws: whatever the group throws (the first error of a service).
    static func run(
        _ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger, grace: Duration = gracePeriod
    ) async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        let received = SignalState()
        let queue = DispatchQueue(label: "replication-node.signals")
        let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            // Ignore the default action first, so that the dispatch sources see the signal instead.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                let name = signalNumber == SIGTERM ? "SIGTERM" : "SIGINT"
                guard received.first(signalNumber) else {
                    logger.error("second signal; exiting now", metadata: ["signal": "\(name)"])
                    exit(1)
                }
                logger.info("shutting down", metadata: ["signal": "\(name)", "graceSeconds": "\(seconds)"])
                // The group sees the signal too; this covers one that comes before it listens.
                Task { await group.triggerGracefulShutdown() }
                queue.asyncAfter(deadline: .now() + seconds) {
                    logger.error("shutdown did not finish within the grace period; exiting", metadata: ["graceSeconds": "\(seconds)"])
                    exit(1)
                }
            }
            source.resume()
            sources.append(source)
        }
        defer { for source in sources { source.cancel() } }
        try await group.run()
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
