import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Echoes every byte back, so one client connection exercises both directions of the proxy.
private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A blocking loopback client; every call runs on its own thread, off the test's executor.
private final class BlockingClient: Sendable {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = try RawFollower.connectToLoopback(port: port)
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw RawFollower.Failure(description: "send: errno \(errno)") }
            offset += sent
        }
    }

    enum Received: Equatable {
        case bytes([UInt8])
        /// The peer closed (FIN) or reset the connection after these bytes.
        case closed([UInt8], reset: Bool)
    }

    /// Reads until `count` bytes arrived, the connection ended, or `timeout` passed.
    func receive(_ count: Int, timeout: Duration) async throws -> Received {
        let descriptor = descriptor
        return try await HandshakeRefusalTests.offThePool {
            let deadline = ContinuousClock.now + timeout
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while received.count < count {
                let left = deadline - ContinuousClock.now
                if left <= .zero { break }
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                guard poll(&poller, 1, max(1, milliseconds)) > 0 else { continue }
                let read = recv(descriptor, &chunk, min(chunk.count, count - received.count), 0)
                if read == 0 { return .closed(received, reset: false) }
                if read < 0 { return .closed(received, reset: errno == ECONNRESET) }
                received += chunk[0..<read]
            }
            return .bytes(received)
        }
    }
}

@Suite("Fault-injecting proxy", .serialized, .heavy)
struct FaultInjectingProxyTests {
    /// Runs `body` with an echo server behind a started proxy.
    func withEchoProxy(_ body: (FaultInjectingProxy, Int) async throws -> Void) async throws {
        let echo = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) } }
            .bind(host: "127.0.0.1", port: 0).get()
        let proxy = FaultInjectingProxy(upstreamPort: echo.localAddress!.port!)
        let port = try await proxy.start()
        do {
            try await body(proxy, port)
        } catch {
            await proxy.stop()
            try await echo.close()
            throw error
        }
        await proxy.stop()
        try await echo.close()
    }

    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
    }

    @Test func bytesPassUnchangedAndAreCounted() async throws {
        try await withEchoProxy { proxy, port in
            let client = try BlockingClient(port: port)
            let bytes = Self.pattern(1 << 20)
            async let echoed = client.receive(bytes.count, timeout: .seconds(60))
            try client.send(bytes)
            #expect(try await echoed == .bytes(bytes))
            let statistics = proxy.statistics
            #expect(statistics.accepted == 1 && statistics.open == 1)
            #expect(statistics.bytesClientToServer == bytes.count && statistics.bytesServerToClient == bytes.count)
        }
    }

    @Test func latencyDelaysEveryByte() async throws {
        try await withEchoProxy { proxy, port in
            proxy.set(.init(latency: .milliseconds(300)), for: .serverToClient)
            let client = try BlockingClient(port: port)
            let start = ContinuousClock.now
            try client.send([42])
            #expect(try await client.receive(1, timeout: .seconds(30)) == .bytes([42]))
            #expect(ContinuousClock.now - start >= .milliseconds(300))
        }
    }

    @Test func aBandwidthCapSlowsTheStream() async throws {
        try await withEchoProxy { proxy, port in
            proxy.set(.init(bytesPerSecond: 256 * 1024), for: .clientToServer)
            let client = try BlockingClient(port: port)
            let bytes = Self.pattern(512 * 1024)
            let start = ContinuousClock.now
            async let echoed = client.receive(bytes.count, timeout: .seconds(60))
            try client.send(bytes)
            #expect(try await echoed == .bytes(bytes))
            // 512 KiB at 256 KiB/s: at least 2 s less the first chunk, which passes at once.
            #expect(ContinuousClock.now - start >= .milliseconds(1500))
        }
    }

    @Test func aBlackHoleForwardsNothingClosesNothingAndHealsIntact() async throws {
        try await withEchoProxy { proxy, port in
            let client = try BlockingClient(port: port)
            try client.send([1, 2, 3])
            #expect(try await client.receive(3, timeout: .seconds(30)) == .bytes([1, 2, 3]))
            proxy.set(.init(blackHole: true))
            let bytes = Self.pattern(200_000)
            try client.send(bytes)
            #expect(try await client.receive(1, timeout: .milliseconds(500)) == .bytes([]), "nothing passes, and the connection stays open")
            #expect(proxy.statistics.open == 1)
            proxy.set(.none)
            #expect(try await client.receive(bytes.count, timeout: .seconds(60)) == .bytes(bytes))
        }
    }

    @Test func aResetCutsTheStreamAfterTheGivenBytes() async throws {
        try await withEchoProxy { proxy, port in
            let client = try BlockingClient(port: port)
            try client.send([0])
            #expect(try await client.receive(1, timeout: .seconds(30)) == .bytes([0]))
            #expect(await proxy.reset(afterForwarding: 10, in: .clientToServer) == 1)
            try client.send(Self.pattern(1000))
            guard case .closed(let received, reset: let reset) = try await client.receive(1000, timeout: .seconds(30)) else {
                Issue.record("the connection was not cut")
                return
            }
            #expect(reset, "an RST, not a FIN")
            #expect(received.count <= 10)
            #expect(proxy.statistics.bytesClientToServer == 11)
            let closed = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(30)) { proxy.statistics.open == 0 }
            #expect(closed)
        }
    }

    @Test func aHalfCloseEndsOneDirectionOnly() async throws {
        try await withEchoProxy { proxy, port in
            let client = try BlockingClient(port: port)
            try client.send([7])
            #expect(try await client.receive(1, timeout: .seconds(30)) == .bytes([7]))
            #expect(await proxy.halfClose(.serverToClient) == 1)
            #expect(try await client.receive(1, timeout: .seconds(30)) == .closed([], reset: false))
            // The other direction still flows.
            try client.send(Self.pattern(100))
            let forwarded = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(30)) { proxy.statistics.bytesClientToServer == 101 }
            #expect(forwarded)
        }
    }

    @Test func oneByteIsCorruptedAtTheGivenOffset() async throws {
        try await withEchoProxy { proxy, port in
            let client = try BlockingClient(port: port)
            try client.send([0])
            #expect(try await client.receive(1, timeout: .seconds(30)) == .bytes([0]))
            #expect(await proxy.corruptByte(at: 5, in: .serverToClient) == 1)
            let bytes = Self.pattern(100)
            async let echoed = client.receive(bytes.count, timeout: .seconds(30))
            try client.send(bytes)
            var expected = bytes
            expected[5] = ~expected[5]
            #expect(try await echoed == .bytes(expected))
        }
    }
}
