import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on loopback that sits between a follower and its leader and misbehaves on
/// demand, per direction and switchable at run time: latency, a bandwidth cap, a black hole,
/// a reset in the middle of a frame, a half-close, one corrupted byte.
///
/// Point the follower at ``port`` instead of the leader:
///
/// ```swift
/// let proxy = FaultInjectingProxy(upstreamPort: leaderPort)
/// let port = try await proxy.start()
/// // ... follower connects to 127.0.0.1:port ...
/// proxy.set(.init(blackHole: true))                       // both directions go silent
/// proxy.set(.init(bytesPerSecond: 256 * 1024), for: .serverToClient)
/// await proxy.stop()
/// ```
///
/// Faults set with ``set(_:for:)`` apply to every connection, open or future. The one-shot
/// actions (``reset(afterForwarding:in:)``, ``corruptByte(at:in:)``, ``halfClose(_:)``)
/// apply to the connections open when they are called, are in place when they return, and
/// return how many connections that was.
public final class FaultInjectingProxy: Sendable {
    /// Which way data flows through the proxy.
    public enum Direction: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// From the side that connected to the proxy (a follower) to the upstream (the leader).
        case clientToServer
        /// From the upstream (the leader) to the side that connected (a follower).
        case serverToClient

        /// The case's name, `clientToServer` or `serverToClient`.
        public var description: String { rawValue }
    }

    /// Standing faults for one direction.
    public struct Faults: Sendable, Equatable {
        /// Every chunk is delivered this much later than it was read (order is kept).
        public var latency: Duration
        /// Reading pauses so that at most this many bytes per second pass; nil: no cap.
        public var bytesPerSecond: Int?
        /// Nothing passes and nothing is closed, like a silent network drop: the proxy stops
        /// reading, so the sender's socket buffers fill and its writes stall.
        public var blackHole: Bool

        /// Faults with the given values; the defaults are no fault at all (``none``).
        ///
        /// - Parameters:
        ///   - latency: how much later each chunk is delivered than it was read (default zero).
        ///   - bytesPerSecond: the most bytes per second to pass; nil (the default): no cap.
        ///   - blackHole: when true, nothing passes and nothing is closed (default false).
        public init(latency: Duration = .zero, bytesPerSecond: Int? = nil, blackHole: Bool = false) {
            self.latency = latency
            self.bytesPerSecond = bytesPerSecond
            self.blackHole = blackHole
        }

        /// No fault: bytes pass as fast as the proxy can move them.
        public static let none = Faults()
    }

    /// What the proxy has seen so far.
    public struct Statistics: Sendable, Equatable {
        /// Connections accepted (each one opens its own upstream connection).
        public var accepted = 0
        /// Connections open right now.
        public var open = 0
        /// Bytes forwarded from the client to the upstream.
        public var bytesClientToServer = 0
        /// Bytes forwarded from the upstream to the client.
        public var bytesServerToClient = 0
    }

    /// The host of the real server the proxy connects each accepted connection to.
    public let upstreamHost: String
    /// The port of the real server the proxy connects each accepted connection to.
    public let upstreamPort: Int
    /// The address the proxy listens on.
    public let listenHost: String
    private let state = Mutex(State())

    private struct State {
        var faults: [Direction: Faults] = [.clientToServer: .none, .serverToClient: .none]
        var statistics = Statistics()
        var connections: [UInt64: ProxiedConnection] = [:]
        var nextConnectionID: UInt64 = 0
        var server: (any Channel)?
        var port: Int?
    }

    /// A proxy to the server at `upstreamHost`:`upstreamPort`, not listening yet: call ``start()``.
    ///
    /// - Parameters:
    ///   - upstreamHost: where the real server listens (loopback by default).
    ///   - upstreamPort: the real server's port, e.g. the leader's
    ///     `ReplicationLeader.listeningPort()`.
    ///   - listenHost: where the proxy listens; keep it on 127.0.0.0/8.
    public init(upstreamHost: String = "127.0.0.1", upstreamPort: Int, listenHost: String = "127.0.0.1") {
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        self.listenHost = listenHost
    }

    /// Starts listening on an ephemeral port and returns it.
    ///
    /// Each connection accepted from then on gets its own connection to the upstream.
    ///
    /// - Returns: the port the proxy listens on, also in ``port``.
    /// - Throws: SwiftNIO's error when `listenHost` cannot be bound; no `ReplicationError`.
    @discardableResult
    public func start() async throws -> Int {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // One read per read() call keeps a bandwidth cap's bursts to one chunk.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelInitializer { [self] client in connectUpstream(for: client) }
            .bind(host: listenHost, port: 0)
            .get()
        let port = server.localAddress?.port ?? 0
        state.withLock {
            $0.server = server
            $0.port = port
        }
        return port
    }

    /// The port the proxy listens on (nil before ``start()``).
    public var port: Int? { state.withLock { $0.port } }

    /// Stops listening and closes every proxied connection.
    public func stop() async {
        let (server, connections) = state.withLock { state in
            defer {
                state.server = nil
                state.connections = [:]
            }
            return (state.server, Array(state.connections.values))
        }
        try? await server?.close()
        for connection in connections { connection.perform { client, _ in client.closeBoth(reset: false) } }
    }

    /// Sets the standing faults of one direction.
    ///
    /// They replace the direction's previous faults on every connection, open or future.
    ///
    /// - Parameters:
    ///   - faults: the faults to apply; ``Faults/none`` lifts them.
    ///   - direction: the direction they apply to.
    public func set(_ faults: Faults, for direction: Direction) {
        let connections = state.withLock { state in
            state.faults[direction] = faults
            return Array(state.connections.values)
        }
        // Reading may have to resume (a black hole or a cap was lifted).
        for connection in connections { connection.perform { client, server in client.faultsChanged(); server.faultsChanged() } }
    }

    /// Sets the same standing faults in both directions.
    ///
    /// - Parameter faults: the faults to apply; ``Faults/none`` lifts them.
    public func set(_ faults: Faults) {
        for direction in Direction.allCases { set(faults, for: direction) }
    }

    /// The standing faults of one direction.
    ///
    /// - Parameter direction: the direction to read.
    public func faults(for direction: Direction) -> Faults {
        state.withLock { $0.faults[direction] ?? .none }
    }

    /// A snapshot of what the proxy has seen since it was created.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// On every open connection: forwards `bytes` more bytes in `direction`, then resets both
    /// sockets (RST, not FIN), so the receiver sees a frame cut short and the sender an error.
    ///
    /// - Parameters:
    ///   - bytes: how many more bytes to forward before the reset (default 0: at once).
    ///   - direction: the direction whose bytes are counted.
    /// - Returns: the number of open connections it applied to.
    @discardableResult
    public func reset(afterForwarding bytes: Int = 0, in direction: Direction) async -> Int {
        await forEachConnection { client, server in (direction == .clientToServer ? client : server).armReset(afterBytes: bytes) }
    }

    /// On every open connection: flips every bit of the byte `offset` bytes ahead in the
    /// stream flowing in `direction`.
    ///
    /// - Parameters:
    ///   - offset: how many bytes ahead the corrupted byte is (default 0: the next byte).
    ///   - direction: the stream to corrupt.
    /// - Returns: the number of open connections it applied to.
    @discardableResult
    public func corruptByte(at offset: Int = 0, in direction: Direction) async -> Int {
        await forEachConnection { client, server in (direction == .clientToServer ? client : server).armCorruption(atOffset: offset) }
    }

    /// On every open connection: ends `direction` with a FIN to its receiver while the other
    /// direction keeps flowing.
    ///
    /// - Parameter direction: the direction to end.
    /// - Returns: the number of open connections it applied to.
    @discardableResult
    public func halfClose(_ direction: Direction) async -> Int {
        await forEachConnection { client, server in (direction == .clientToServer ? client : server).halfCloseForwarding() }
    }

    /// Runs `body` on every open connection and returns once it has run everywhere, so the
    /// fault is in place before the caller sends more data.
    private func forEachConnection(_ body: @escaping @Sendable (RelayHandler, RelayHandler) -> Void) async -> Int {
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { await connection.performAndWait(body) }
        return connections.count
    }

    // MARK: Called by the relay handlers, on their event loop

    func currentFaults(_ direction: Direction) -> Faults {
        state.withLock { $0.faults[direction] ?? .none }
    }

    func forwarded(_ bytes: Int, _ direction: Direction) {
        state.withLock { state in
            switch direction {
            case .clientToServer: state.statistics.bytesClientToServer += bytes
            case .serverToClient: state.statistics.bytesServerToClient += bytes
            }
        }
    }

    func closed(_ id: UInt64) {
        state.withLock { state in
            if state.connections.removeValue(forKey: id) != nil { state.statistics.open -= 1 }
        }
    }

    /// Connects to the upstream on the client's event loop, then glues the two channels.
    private func connectUpstream(for client: any Channel) -> EventLoopFuture<Void> {
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: 1)
            .connect(host: upstreamHost, port: upstreamPort)
            .flatMapThrowing { [self] server in
                let id = state.withLock { state -> UInt64 in
                    state.nextConnectionID += 1
                    state.statistics.accepted += 1
                    state.statistics.open += 1
                    return state.nextConnectionID
                }
                let clientSide = RelayHandler(proxy: self, connectionID: id, reads: .clientToServer)
                let serverSide = RelayHandler(proxy: self, connectionID: id, reads: .serverToClient)
                clientSide.partner = serverSide
                serverSide.partner = clientSide
                try client.pipeline.syncOperations.addHandler(clientSide)
                try server.pipeline.syncOperations.addHandler(serverSide)
                let connection = ProxiedConnection(
                    eventLoop: client.eventLoop,
                    client: NIOLoopBound(clientSide, eventLoop: client.eventLoop),
                    server: NIOLoopBound(serverSide, eventLoop: client.eventLoop)
                )
                state.withLock { $0.connections[id] = connection }
            }
    }
}

/// The two relay handlers of one proxied connection, reachable from any thread.
private struct ProxiedConnection: Sendable {
    let eventLoop: any EventLoop
    let client: NIOLoopBound<RelayHandler>
    let server: NIOLoopBound<RelayHandler>

    func perform(_ body: @escaping @Sendable (RelayHandler, RelayHandler) -> Void) {
        let client = client
        let server = server
        eventLoop.execute { body(client.value, server.value) }
    }

    /// Like `perform`, and returns once `body` has run.
    func performAndWait(_ body: @escaping @Sendable (RelayHandler, RelayHandler) -> Void) async {
        let client = client
        let server = server
        try? await eventLoop.submit { body(client.value, server.value) }.get()
    }
}
