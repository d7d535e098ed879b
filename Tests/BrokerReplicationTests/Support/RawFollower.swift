import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

#if canImport(Glibc)
import Glibc
#endif

/// A follower on a plain blocking socket: it completes a real handshake and then does only
/// what a test tells it, such as never reading again (a black hole that keeps the socket open).
///
/// It tags what it sends and checks the tags of what it receives, as the frame authentication
/// of a link without TLS asks (``FrameTagger``, ``FrameVerifier``).
final class RawFollower {
    let descriptor: Int32
    private var parser = FrameParser(preamble: .none, authenticatesFrames: true)
    private var verifier = FrameVerifier(side: .follower)
    private var tagger = FrameTagger(side: .follower)
    private var inbound = ByteBuffer()

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Connects to the leader on loopback; a small receive buffer makes a stalled reader fill up fast.
    init(port: Int, receiveBufferBytes: Int32? = nil) throws {
        descriptor = try Self.connectToLoopback(port: port, receiveBufferBytes: receiveBufferBytes)
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port`, with `receiveBufferBytes` set
    /// before the connect when given. The socket is closed when the connect fails.
    static func connectToLoopback(port: Int, receiveBufferBytes: Int32? = nil) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        if var bytes = receiveBufferBytes {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let failure = Failure(description: "connect: errno \(errno)")
            close(descriptor)
            throw failure
        }
        return descriptor
    }

    deinit {
        close(descriptor)
    }

    /// Sends whole frames (after the preamble, when it starts the stream), tagging each.
    func send(_ buffer: ByteBuffer) throws {
        var tagged = ByteBuffer()
        for piece in try tagger.tag(buffer) {
            switch piece {
            case .bytes(let bytes): tagged.writeImmutableBuffer(bytes)
            case .tag(let tag): tagged.writeBytes(tag)
            }
        }
        try sendUntagged(tagged)
    }

    private func sendUntagged(_ buffer: ByteBuffer) throws {
        var remaining = buffer
        while remaining.readableBytes > 0 {
            let sent = remaining.withUnsafeReadableBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw Failure(description: "send: errno \(errno)") }
            remaining.moveReaderIndex(forwardBy: sent)
        }
    }

    func send(_ message: WireMessage) throws {
        var buffer = ByteBuffer()
        message.write(to: &buffer)
        try send(buffer)
    }

    /// Reads until one whole message arrives; nil when the leader closed the connection.
    func receive() throws -> WireMessage? {
        while true {
            if let frame = try parser.next(from: &inbound) {
                try verifier.verify(frame)
                return try WireMessage(decoding: frame)
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count == 0 { return nil }
            guard count > 0 else { throw Failure(description: "recv: errno \(errno)") }
            inbound.writeBytes(chunk[0..<count])
        }
    }

    /// Derives this connection's frame keys, as a follower does once the challenge came.
    func useKeys(secret: SharedSecret, followerNonce: [UInt8], leaderNonce: [UInt8]) {
        let keys = FrameAuthentication.SessionKeys(secret: secret, followerNonce: followerNonce, leaderNonce: leaderNonce)
        verifier.keys = keys
        tagger.keys = keys
    }

    /// Does the follower's half of the handshake; returns the leader's welcome or refusal.
    func handshake(cluster: String, nodeID: String, secret: SharedSecret, position: (epoch: UInt64, lsn: UInt64) = (0, 0)) throws -> WireMessage {
        let nonce = HandshakeProof.makeNonce()
        var opening = ByteBuffer()
        FrameParser.writePreamble(to: &opening)
        WireMessage.hello(Hello(clusterID: cluster, nodeID: nodeID, followerNonce: nonce)).write(to: &opening)
        try send(opening)
        guard let reply = try receive() else { throw Failure(description: "closed after hello") }
        guard case .challenge(let challenge) = reply else { return reply }
        useKeys(secret: secret, followerNonce: nonce, leaderNonce: challenge.leaderNonce)
        let proof = HandshakeProof.proof(
            role: .follower, secret: secret, clusterID: cluster, leaderNodeID: challenge.leaderNodeID, followerNodeID: nodeID,
            followerNonce: nonce, leaderNonce: challenge.leaderNonce
        )
        try send(.authenticate(Authenticate(followerProof: proof, epoch: position.epoch, lastDurableLSN: position.lsn)))
        guard let welcome = try receive() else { throw Failure(description: "closed after authenticate") }
        return welcome
    }

    /// True once the leader has closed the connection (reads pending bytes without blocking).
    func isClosedByPeer() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = recv(descriptor, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET || errno == EPIPE }
        }
    }
}
