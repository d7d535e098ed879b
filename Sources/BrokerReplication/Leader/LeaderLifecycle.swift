import NIOCore
import Synchronization

/// Where the leader's serving stands, and the connections it has open, behind one lock.
///
/// One state enum instead of separate flags: a caller of ``ReplicationLeader/listeningPort()``
/// waits in `.starting`, a graceful shutdown request reaches the server only in `.listening`,
/// and once stopping no new connection is served.
final class LeaderLifecycle: Sendable {
    enum Phase {
        /// `run()` has not bound its port yet; these callers wait for it.
        case starting(portWaiters: [CheckedContinuation<Int, any Error>])
        /// Serving; a graceful shutdown is requested through `shutdownRequests`.
        case listening(port: Int, shutdownRequests: AsyncStream<Void>.Continuation)
        /// Binding or claiming the epoch failed: `run()` threw this.
        case failed(any Error)
        /// `run()` is done serving on this port.
        case stopped(port: Int)
    }

    private struct State {
        var phase: Phase = .starting(portWaiters: [])
        var connections: OpenConnections
    }

    private let state: Mutex<State>

    init(maximumHandshakingConnections: Int) {
        state = Mutex(State(connections: OpenConnections(maximumHandshaking: maximumHandshakingConnections)))
    }

    // MARK: Lifecycle

    /// The port once the leader listens; throws what `run()` threw if it could not.
    func port() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<Int, any Error>? in
                switch state.phase {
                case .starting(var waiters):
                    waiters.append(continuation)
                    state.phase = .starting(portWaiters: waiters)
                    return nil
                case .listening(let port, _), .stopped(let port):
                    return .success(port)
                case .failed(let error):
                    return .failure(error)
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// The leader listens on `port`; graceful shutdown requests go to `shutdownRequests`.
    func listening(on port: Int, shutdownRequests: AsyncStream<Void>.Continuation) {
        resumeWaiters(with: .success(port), becoming: .listening(port: port, shutdownRequests: shutdownRequests))
    }

    /// `run()` could not start serving.
    func failed(_ error: any Error) {
        resumeWaiters(with: .failure(error), becoming: .failed(error))
    }

    private func resumeWaiters(with result: Result<Int, any Error>, becoming phase: Phase) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
            defer { state.phase = phase }
            if case .starting(let waiters) = state.phase { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// Asks a listening leader to drain and stop; ignored in any other phase.
    func requestShutdown() {
        let requests = state.withLock { state -> AsyncStream<Void>.Continuation? in
            if case .listening(_, let requests) = state.phase { return requests }
            return nil
        }
        requests?.yield()
    }

    /// `run()` is done serving.
    func stopped() {
        state.withLock { state in
            switch state.phase {
            case .listening(let port, _): state.phase = .stopped(port: port)
            case .starting, .failed, .stopped: break
            }
        }
    }

    // MARK: Connections

    /// Registers an accepted connection, unless the leader is stopping or the handshake cap is full.
    func track(_ channel: any Channel) -> OpenConnections.Admission {
        state.withLock { $0.connections.accept(channel) }
    }

    /// The connection authenticated: it no longer counts against `maximumHandshakingConnections`.
    func finishedHandshake(_ channel: any Channel) {
        state.withLock { $0.connections.finishedHandshake(channel) }
    }

    func untrack(_ channel: any Channel) {
        state.withLock { $0.connections.remove(channel) }
    }

    /// Stops accepting connections and closes every open one.
    func closeAllConnections() {
        for channel in state.withLock({ $0.connections.stop() }) { channel.close(promise: nil) }
    }

    /// Connections accepted and not yet closed (handshaking or streaming).
    var openConnectionCount: Int { state.withLock { $0.connections.channels.count } }

    /// Connections accepted and not yet authenticated.
    var handshakingConnectionCount: Int { state.withLock { $0.connections.handshaking.count } }
}
