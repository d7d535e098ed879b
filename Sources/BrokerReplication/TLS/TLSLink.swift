import NIOCore
import NIOSSL

/// Where TLS joins the replication pipelines, and how a TLS mismatch between the two ends is
/// told apart from any other failure (Docs/Operations.md, "TLS on the replication link").
enum TLSLink {
    /// The refusal a TLS leader sends, in plaintext, to a follower that sent the plaintext
    /// preamble: the follower can read it and show why in its `lastError`.
    static let plaintextRefusal = Refusal(
        code: .authenticationFailed,
        reason: "the leader requires TLS on the replication port; configure the follower's TLS settings (tlsTrustedRootsFile, and tlsCertificateFile/tlsPrivateKeyFile when the leader requires client certificates)"
    )

    /// What a TLS leader does with a connection whose first byte is `first`: a TLS handshake
    /// record starts with 0x16; the plaintext preamble starts with "B" (`BRPL`); anything else is
    /// left to the TLS handler, which fails it.
    enum FirstByte: Equatable {
        case tls
        case plaintextFollower
        case other
    }

    /// Classifies the first byte a leader receives (a pure decision for ``PlaintextGuard``).
    static func classify(firstByte: UInt8) -> FirstByte {
        switch firstByte {
        case 0x16: .tls
        case replicationMagic[0]: .plaintextFollower
        default: .other
        }
    }

    /// Adds the leader's TLS handlers in front of the frame decoder: the guard, then TLS.
    /// `onPlaintextFollower` is told the peer's address when the guard refuses one.
    static func addServerHandlers(_ context: NIOSSLContext, to channel: any Channel, onPlaintextFollower: @escaping @Sendable (String) -> Void) throws {
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(PlaintextGuard(onPlaintextFollower: onPlaintextFollower))
        try operations.addHandler(NIOSSLServerHandler(context: context))
    }

    /// Adds the follower's TLS handler, first in the pipeline. The leader's certificate is
    /// checked against `host`: a host name by DNS name (and SNI), an IP address by IP SAN.
    static func addClientHandler(_ context: NIOSSLContext, host: String, to channel: any Channel) throws {
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host))
    }

    /// The follower's account of a connection that failed in or around TLS, or nil when the
    /// error has nothing to do with TLS. `tls` says whether the follower uses TLS;
    /// `leaderHost` is the name or address it dials, which the leader's certificate must name.
    static func describeFollowerFailure(_ error: any Error, tls: Bool, leaderHost: String) -> String? {
        let text = String(describing: error)
        guard tls else { return nil }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError || text.contains("SSL") {
            return "TLS with the leader failed: \(explain(text, leaderHost: leaderHost)) (\(text))"
        }
        return nil
    }

    /// The leader's account of a connection that failed before its handshake because of TLS
    /// (a plaintext follower, a certificate that does not verify), or nil for any other error.
    static func describeLeaderFailure(_ error: any Error) -> String? {
        let text = String(describing: error)
        guard error is NIOSSLError || error is BoringSSLError || text.contains("SSL") else { return nil }
        return "TLS handshake failed: \(text)"
    }

    /// A plaintext leader's account of a peer that opened with a TLS handshake record (first
    /// byte 0x16) instead of the preamble: a follower configured for TLS.
    static func describePlaintextLeaderFailure(_ error: WireError, tls: Bool) -> String? {
        guard !tls, case .badMagic(let received) = error.code, received.first == 0x16 else { return nil }
        return "the peer started a TLS handshake, but this leader has no TLS configured (\(error))"
    }

    /// A plain-words reading of BoringSSL's reason codes, the ones a misconfiguration produces.
    static func explain(_ text: String, leaderHost: String) -> String {
        let isAddress = (try? SocketAddress(ipAddress: leaderHost, port: 0)) != nil
        let reasons: [(String, String)] = [
            ("WRONG_VERSION_NUMBER", "the leader does not speak TLS on this port (a plaintext leader?)"),
            ("PACKET_LENGTH_TOO_LONG", "the leader does not speak TLS on this port (a plaintext leader?)"),
            // swift-nio-ssl checks the name after the chain, apart (failedToValidateHostname).
            ("CERTIFICATE_VERIFY_FAILED", "the leader's certificate does not verify against tlsTrustedRootsFile (issued by another CA, expired or not yet valid)"),
            (
                "failedToValidateHostname",
                "the leader's certificate does not name \(leaderHost.debugDescription), the follower's leaderHost "
                    + (isAddress ? "(an IP address must be one of its IP subject alternative names)" : "(it must be one of its DNS subject alternative names)")
            ),
            ("ALERT_CERTIFICATE_REQUIRED", "the leader requires a client certificate (set tlsCertificateFile and tlsPrivateKeyFile)"),
            ("ALERT_HANDSHAKE_FAILURE", "the leader refused the TLS handshake (a client certificate required?)"),
            ("ALERT_UNKNOWN_CA", "the leader does not trust this follower's certificate (issued by a CA not in its tlsTrustedRootsFile)"),
            ("ALERT_CERTIFICATE_EXPIRED", "the leader refused this follower's certificate: it has expired"),
            ("ALERT_BAD_CERTIFICATE", "the leader refused this follower's certificate"),
            ("ALERT_CERTIFICATE_UNKNOWN", "the leader refused this follower's certificate"),
            ("EOF during handshake", "the leader closed the connection during the TLS handshake: a plaintext leader, which does not speak TLS on this port?"),
            ("uncleanShutdown", "the leader closed the connection during TLS (a plaintext leader, or it refused this follower's certificate)"),
        ]
        return reasons.first { text.contains($0.0) }?.1 ?? "the TLS handshake or stream failed"
    }
}

/// A TLS leader's first handler: a follower that sent the plaintext preamble gets a plaintext
/// refusal it can read (``TLSLink/plaintextRefusal``) instead of a TLS alert it cannot; any
/// other connection passes to TLS untouched, and this handler leaves the pipeline.
final class PlaintextGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Set once a plaintext follower was refused: what else it sends is dropped.
    private var refused = false
    private let onPlaintextFollower: @Sendable (String) -> Void

    init(onPlaintextFollower: @escaping @Sendable (String) -> Void) {
        self.onPlaintextFollower = onPlaintextFollower
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        if TLSLink.classify(firstByte: first) == .plaintextFollower {
            refused = true
            onPlaintextFollower(context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown")
            // Without TLS in the way, the close below ends the connection quietly instead of
            // as a failed TLS handshake.
            if let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self) {
                context.pipeline.syncOperations.removeHandler(tls, promise: nil)
            }
            let refusal = WireMessage.refusal(TLSLink.plaintextRefusal).encoded(using: context.channel.allocator)
            // Close only once the socket took the refusal, so the follower can read why.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(refusal)).whenComplete { _ in bound.value.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// A follower spoke plaintext to a TLS leader; it was sent ``TLSLink/plaintextRefusal``.
struct PlaintextFollower: Error, CustomStringConvertible {
    var description: String { "a follower connected without TLS; refused: \(TLSLink.plaintextRefusal.reason)" }
}
