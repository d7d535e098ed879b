import NIOCore

/// The protocol version this build speaks; it is sent in the stream preamble.
let replicationProtocolVersion: UInt16 = 3

/// The first four bytes a follower sends on a new connection: ASCII "BRPL".
let replicationMagic: [UInt8] = Array("BRPL".utf8)

/// The type byte of a frame. Control frames are small and fixed-shape; data frames carry batches.
enum FrameType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case challenge = 0x02
    case authenticate = 0x03
    case welcome = 0x04
    case refusal = 0x05
    case data = 0x10
    case heartbeat = 0x11
    case ack = 0x20
    case heartbeatReply = 0x21
    case syncBegin = 0x30
    case syncManifest = 0x31
    case syncRequest = 0x32
    case syncChunk = 0x33
    case syncEnd = 0x34
    case syncProgress = 0x35

    /// Whether followers send this type (the rest only leaders send).
    var isSentByFollower: Bool {
        switch self {
        case .hello, .authenticate, .ack, .heartbeatReply, .syncRequest, .syncProgress, .refusal: true
        default: false
        }
    }

    /// Whether leaders send this type.
    var isSentByLeader: Bool {
        self == .refusal || !isSentByFollower
    }

    /// The largest body this type may have, checked before the body is read.
    func maximumBodyBytes(_ limits: WireLimits) -> Int {
        switch self {
        case .data, .syncManifest, .syncChunk: limits.maximumDataFrameBodyBytes
        default: WireLimits.maximumControlFrameBodyBytes
        }
    }

    var description: String {
        switch self {
        case .hello: "hello"
        case .challenge: "challenge"
        case .authenticate: "authenticate"
        case .welcome: "welcome"
        case .refusal: "refusal"
        case .data: "data"
        case .heartbeat: "heartbeat"
        case .ack: "ack"
        case .heartbeatReply: "heartbeat-reply"
        case .syncBegin: "sync-begin"
        case .syncManifest: "sync-manifest"
        case .syncRequest: "sync-request"
        case .syncChunk: "sync-chunk"
        case .syncEnd: "sync-end"
        case .syncProgress: "sync-progress"
        }
    }
}

/// One checksummed frame: its type and its body (the checksum is verified on the way in).
@_spi(Benchmarks) public struct Frame: Hashable, Sendable {
    /// What follows a frame's body on a link with frame authentication: the header's checksum,
    /// which the tag covers instead of the parser, and the tag (``FrameAuthentication``).
    struct Trailer: Hashable, Sendable {
        var checksum: UInt32
        var tag: ByteBuffer
    }

    var type: FrameType
    var body: ByteBuffer
    /// Set by a parser that expects tags, on every frame but the first.
    var trailer: Trailer?

    init(type: FrameType, body: ByteBuffer, trailer: Trailer? = nil) {
        self.type = type
        self.body = body
        self.trailer = trailer
    }

    /// Bytes before the body: length (4), type (1), CRC32C (4).
    static let headerBytes = 9

    /// The CRC32C of the type byte followed by the body.
    static func checksum(type: UInt8, body: ByteBufferView) -> UInt32 {
        var running = withUnsafeBytes(of: type) { CRC32C.update(CRC32C.start, with: $0) }
        running = body.withContiguousStorageIfAvailable { CRC32C.update(running, with: UnsafeRawBufferPointer($0)) }
            ?? Array(body).withUnsafeBytes { CRC32C.update(running, with: $0) }
        return CRC32C.finish(running)
    }

    /// Appends this frame, header and body, to `buffer`.
    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(body.readableBytes))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(Self.checksum(type: type.rawValue, body: body.readableBytesView))
        buffer.writeImmutableBuffer(body)
    }

    /// Writes the header for a body that already sits in `buffer` after a 9-byte gap at
    /// `headerIndex`, so a data frame is built in place with no copy.
    static func fillHeader(in buffer: inout ByteBuffer, at headerIndex: Int, type: FrameType) {
        let bodyIndex = headerIndex + headerBytes
        let bodyLength = buffer.writerIndex - bodyIndex
        // The checksum is computed (and the slice released) before the header is written: a
        // slice still alive during a write would make the buffer copy itself.
        let crc = checksum(type: type.rawValue, body: buffer.getSlice(at: bodyIndex, length: bodyLength)!.readableBytesView)
        buffer.setInteger(UInt32(bodyLength), at: headerIndex)
        buffer.setInteger(type.rawValue, at: headerIndex + 4)
        buffer.setInteger(crc, at: headerIndex + 5)
    }
}

/// Cuts frames out of a byte stream: a pure parser that the NIO decoder and tests share.
///
/// Lengths and types are checked from the header alone, before the body is awaited or
/// allocated; the checksum is checked before the frame is handed on. On a link with frame
/// authentication every frame but the first is followed by a tag: the parser cuts it off and
/// leaves the checksum to the tag's check (``FrameAuthenticationHandler``), so that a changed
/// byte is reported as what it is on such a link, a frame that fails authentication.
@_spi(Benchmarks) public struct FrameParser: Sendable {
    @_spi(Benchmarks) public enum Preamble: Sendable {
        /// The leader's side: the stream starts with "BRPL" and a version.
        case expected
        /// The follower's side: the leader sends frames straight away.
        case none
    }

    let limits: WireLimits
    private var awaitingPreamble: Bool
    /// The leader's side expects only follower frames and the follower's side only leader
    /// frames, so nothing a peer may not send is ever buffered (a would-be follower cannot
    /// make the leader hold a 9 MiB data frame before it has authenticated).
    private let isLeaderSide: Bool
    /// Whether frames after the first carry a tag (a link without TLS).
    private let authenticatesFrames: Bool
    private var framesRead = 0

    @_spi(Benchmarks) public init(limits: WireLimits = .default, preamble: Preamble, authenticatesFrames: Bool = false) {
        self.limits = limits
        self.awaitingPreamble = preamble == .expected
        self.isLeaderSide = preamble == .expected
        self.authenticatesFrames = authenticatesFrames
    }

    /// The preamble a follower writes first: magic "BRPL" and the protocol version.
    static func writePreamble(to buffer: inout ByteBuffer, version: UInt16 = replicationProtocolVersion) {
        buffer.writeBytes(replicationMagic)
        buffer.writeInteger(version)
    }

    static let preambleBytes = 6

    /// Reads the next frame from `buffer`, or returns nil (consuming nothing) when it holds
    /// only part of one.
    @_spi(Benchmarks) public mutating func next(from buffer: inout ByteBuffer) throws(WireError) -> Frame? {
        if awaitingPreamble {
            guard buffer.readableBytes >= Self.preambleBytes else {
                // Refuse a wrong magic as soon as its bytes arrive, not after six.
                let seen = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, 4)) ?? []
                if !replicationMagic.starts(with: seen) { throw WireError(.badMagic(received: seen)) }
                return nil
            }
            let magic = buffer.readBytes(length: 4)!
            guard magic == replicationMagic else { throw WireError(.badMagic(received: magic)) }
            let version = buffer.readInteger(as: UInt16.self)!
            guard version == replicationProtocolVersion else {
                throw WireError(.unsupportedProtocolVersion(received: version, supported: replicationProtocolVersion))
            }
            awaitingPreamble = false
        }
        guard buffer.readableBytes >= 5,
            let bodyLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let rawType = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)
        else { return nil }
        guard let type = FrameType(rawValue: rawType) else { throw WireError(.unknownFrameType(rawType)) }
        guard isLeaderSide ? type.isSentByFollower : type.isSentByLeader else {
            throw WireError(.unexpectedFrame(type: type, state: isLeaderSide ? "reading from a follower" : "reading from a leader"))
        }
        let limit = type.maximumBodyBytes(limits)
        guard bodyLength <= limit else {
            throw WireError(.frameTooLarge(type: type, bodyBytes: Int(bodyLength), limit: limit))
        }
        let tagged = authenticatesFrames && framesRead > 0
        let tagBytes = tagged ? FrameAuthentication.tagBytes : 0
        guard buffer.readableBytes >= Frame.headerBytes + Int(bodyLength) + tagBytes else { return nil }
        let expected = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt32.self)!
        let body = buffer.getSlice(at: buffer.readerIndex + Frame.headerBytes, length: Int(bodyLength))!
        var trailer: Frame.Trailer?
        if tagged {
            trailer = Frame.Trailer(checksum: expected, tag: buffer.getSlice(at: buffer.readerIndex + Frame.headerBytes + Int(bodyLength), length: tagBytes)!)
        } else {
            let computed = Frame.checksum(type: rawType, body: body.readableBytesView)
            guard computed == expected else {
                throw WireError(.checksumMismatch(type: type, expected: expected, computed: computed))
            }
        }
        buffer.moveReaderIndex(forwardBy: Frame.headerBytes + Int(bodyLength) + tagBytes)
        framesRead += 1
        return Frame(type: type, body: body, trailer: trailer)
    }
}

/// The channel handler that turns bytes into ``Frame``s; every decision is ``FrameParser``'s.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame

    private var parser: FrameParser

    init(limits: WireLimits = .default, preamble: FrameParser.Preamble, authenticatesFrames: Bool = false) {
        self.parser = FrameParser(limits: limits, preamble: preamble, authenticatesFrames: authenticatesFrames)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try parser.next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
