import NIOCore

/// Bytes in every nonce and HMAC-SHA256 proof of the handshake.
let handshakeTokenBytes = 32

/// Follower to leader, first frame after the preamble: who is asking to follow.
struct Hello: Hashable, Sendable {
    var clusterID: String
    var nodeID: String
    var followerNonce: [UInt8]
}

/// Leader to follower: the leader's nonce, and its proof that it knows the secret.
struct Challenge: Hashable, Sendable {
    var leaderNodeID: String
    var leaderNonce: [UInt8]
    var leaderProof: [UInt8]
}

/// Follower to leader: proof of the secret, and where the follower's data stands.
struct Authenticate: Hashable, Sendable {
    var followerProof: [UInt8]
    var epoch: UInt64
    var lastDurableLSN: UInt64
}

/// Leader to follower: accepted, and how the stream resumes.
struct Welcome: Hashable, Sendable {
    enum Resync: UInt8, Hashable, Sendable {
        /// The leader streams from `nextLSN`, which follows the follower's last durable LSN.
        case resume = 1
        /// The follower's data cannot be resumed; a full sync runs before streaming.
        case fullSync = 2
    }

    var epoch: UInt64
    var resync: Resync
    var nextLSN: UInt64
}

/// Either side: the connection is refused, with a reason a person can act on.
struct Refusal: Hashable, Sendable {
    struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        var rawValue: UInt8
        init(rawValue: UInt8) { self.rawValue = rawValue }

        static let unsupportedVersion = Code(rawValue: 1)
        static let wrongCluster = Code(rawValue: 2)
        static let authenticationFailed = Code(rawValue: 3)
        static let protocolViolation = Code(rawValue: 4)
        static let duplicateNode = Code(rawValue: 5)
        static let shuttingDown = Code(rawValue: 6)
        /// A follower could not write what it received; it will resync once fixed.
        static let diskError = Code(rawValue: 7)

        var description: String {
            switch self {
            case .unsupportedVersion: "unsupported-version"
            case .wrongCluster: "wrong-cluster"
            case .authenticationFailed: "authentication-failed"
            case .protocolViolation: "protocol-violation"
            case .duplicateNode: "duplicate-node"
            case .shuttingDown: "shutting-down"
            case .diskError: "disk-error"
            default: "code-\(rawValue)"
            }
        }
    }

    /// The longest reason text, in UTF-8 bytes.
    static let maximumReasonBytes = 1024

    var code: Code
    var reason: String
}

/// Leader to follower on an idle link: the leader's newest LSN and a timestamp to echo.
struct Heartbeat: Hashable, Sendable {
    var leaderLSN: UInt64
    var sentAtNanoseconds: UInt64
}

/// Follower to leader: the echoed heartbeat timestamp and the follower's durable LSN.
struct HeartbeatReply: Hashable, Sendable {
    var echoedSentAtNanoseconds: UInt64
    var durableLSN: UInt64
}

/// Leader to follower: one compressed batch of records, still compressed.
@_spi(Benchmarks) public struct DataFrame: Hashable, Sendable {
    static let codecLZ4Block: UInt8 = 1
    /// Bytes before the compressed payload: first LSN 8, record count 4, size 4, codec 1.
    static let headerBytes = 17

    var firstLSN: UInt64
    var recordCount: UInt32
    var uncompressedBytes: UInt32
    var codec: UInt8
    var compressed: ByteBuffer

    /// The LSN of the batch's last record.
    var lastLSN: UInt64 { firstLSN + UInt64(recordCount) - 1 }
}

extension DataFrame {
    /// Decodes a data frame's body: its header, each field checked, and the compressed
    /// payload, which ``BatchDecoder`` decompresses.
    @_spi(Benchmarks) public init(decoding frame: Frame) throws(WireError) {
        guard frame.type == .data else { throw WireError(.unexpectedFrame(type: frame.type, state: "decoding a data frame")) }
        var reader = WireReader(frame.body, type: frame.type)
        try self.init(reading: &reader)
        try reader.finish()
    }

    /// Reads a data frame's fields from its body; ``WireMessage/init(decoding:limits:)`` and
    /// ``init(decoding:)`` share it.
    init(reading reader: inout WireReader) throws(WireError) {
        let firstLSN = try reader.integer("first LSN", as: UInt64.self)
        let count = try reader.integer("record count", as: UInt32.self)
        let size = try reader.integer("uncompressed size", as: UInt32.self)
        let codec = try reader.integer("codec", as: UInt8.self)
        if firstLSN == 0 { throw reader.malformed("first LSN is 0; LSNs start at 1") }
        if count == 0 { throw reader.malformed("record count is 0") }
        if firstLSN > UInt64.max - UInt64(count) { throw reader.malformed("LSN range overflows") }
        guard codec == DataFrame.codecLZ4Block else { throw WireError(.unknownCodec(codec)) }
        let compressed = reader.remainder()
        if compressed.readableBytes == 0 { throw reader.malformed("no compressed payload") }
        self.init(firstLSN: firstLSN, recordCount: count, uncompressedBytes: size, codec: codec, compressed: compressed)
    }
}

/// Every message of protocol version 2, one per frame type.
enum WireMessage: Hashable, Sendable {
    case hello(Hello)
    case challenge(Challenge)
    case authenticate(Authenticate)
    case welcome(Welcome)
    case refusal(Refusal)
    case data(DataFrame)
    case heartbeat(Heartbeat)
    /// Follower to leader: every record up to and including this LSN is applied and durable.
    case ack(durableLSN: UInt64)
    case heartbeatReply(HeartbeatReply)
    case syncBegin(SyncBegin)
    /// Manifest entries in order; the first has index `firstIndex`.
    case syncManifest(firstIndex: UInt32, entries: [SyncManifestEntry])
    case syncRequest(SyncRequest)
    case syncChunk(SyncChunk)
    /// Leader to follower: every requested file has been sent; the follower installs them,
    /// makes them durable, and acks the cut LSN.
    case syncEnd(cutLSN: UInt64)
    /// Follower to leader, during a full sync: how far it got checking its own files and
    /// receiving the leader's, so a long sync is told apart from a stuck one.
    case syncProgress(SyncProgressReport)

    /// Decodes a checksummed frame's body, refusing any field that is out of bounds.
    init(decoding frame: Frame, limits: WireLimits = .default) throws(WireError) {
        var reader = WireReader(frame.body, type: frame.type)
        switch frame.type {
        case .hello:
            let clusterID = try reader.shortString("cluster id")
            let nodeID = try reader.shortString("node id")
            let nonce = try reader.bytes("follower nonce", count: handshakeTokenBytes)
            self = .hello(Hello(clusterID: clusterID, nodeID: nodeID, followerNonce: nonce))
        case .challenge:
            let nodeID = try reader.shortString("leader node id")
            let nonce = try reader.bytes("leader nonce", count: handshakeTokenBytes)
            let proof = try reader.bytes("leader proof", count: handshakeTokenBytes)
            self = .challenge(Challenge(leaderNodeID: nodeID, leaderNonce: nonce, leaderProof: proof))
        case .authenticate:
            let proof = try reader.bytes("follower proof", count: handshakeTokenBytes)
            let epoch = try reader.integer("epoch", as: UInt64.self)
            let lsn = try reader.integer("last durable LSN", as: UInt64.self)
            self = .authenticate(Authenticate(followerProof: proof, epoch: epoch, lastDurableLSN: lsn))
        case .welcome:
            let epoch = try reader.integer("epoch", as: UInt64.self)
            let rawResync = try reader.integer("resync mode", as: UInt8.self)
            guard let resync = Welcome.Resync(rawValue: rawResync) else {
                throw reader.malformed("unknown resync mode \(rawResync)")
            }
            let nextLSN = try reader.integer("next LSN", as: UInt64.self)
            self = .welcome(Welcome(epoch: epoch, resync: resync, nextLSN: nextLSN))
        case .refusal:
            let code = Refusal.Code(rawValue: try reader.integer("refusal code", as: UInt8.self))
            let reason = try reader.longString("reason", maximumBytes: Refusal.maximumReasonBytes)
            self = .refusal(Refusal(code: code, reason: reason))
        case .data:
            self = .data(try DataFrame(reading: &reader))
        case .heartbeat:
            let lsn = try reader.integer("leader LSN", as: UInt64.self)
            let sentAt = try reader.integer("sent-at time", as: UInt64.self)
            self = .heartbeat(Heartbeat(leaderLSN: lsn, sentAtNanoseconds: sentAt))
        case .ack:
            self = .ack(durableLSN: try reader.integer("durable LSN", as: UInt64.self))
        case .heartbeatReply:
            let echoed = try reader.integer("echoed sent-at time", as: UInt64.self)
            let lsn = try reader.integer("durable LSN", as: UInt64.self)
            self = .heartbeatReply(HeartbeatReply(echoedSentAtNanoseconds: echoed, durableLSN: lsn))
        case .syncBegin:
            let cut = try reader.integer("cut LSN", as: UInt64.self)
            let count = try reader.integer("file count", as: UInt32.self)
            self = .syncBegin(SyncBegin(cutLSN: cut, fileCount: count))
        case .syncManifest:
            let firstIndex = try reader.integer("first index", as: UInt32.self)
            let count = Int(try reader.integer("entry count", as: UInt16.self))
            var entries: [SyncManifestEntry] = []
            entries.reserveCapacity(min(count, frame.body.readableBytes / 15))
            for _ in 0..<count {
                let rawPath = try reader.longString("path", maximumBytes: limits.maximumPathBytes)
                let path = try ReplicatedPath(validating: rawPath, maximumBytes: limits.maximumPathBytes)
                let size = try reader.integer("file size", as: UInt64.self)
                if size > UInt64(Int64.max) { throw reader.malformed("file size \(size) is beyond any file") }
                let count = try reader.integer("chunk count", as: UInt32.self)
                let expected = SyncManifestEntry.chunkCount(forSize: size)
                guard count == expected else {
                    throw reader.malformed("\(path) has \(size) bytes, so \(expected) chunk checksums, but the entry declares \(count)")
                }
                var checksums: [UInt32] = []
                checksums.reserveCapacity(min(expected, frame.body.readableBytes / 4))
                for _ in 0..<count { checksums.append(try reader.integer("chunk checksum", as: UInt32.self)) }
                entries.append(SyncManifestEntry(path: path, size: size, chunkChecksums: checksums))
            }
            self = .syncManifest(firstIndex: firstIndex, entries: entries)
        case .syncRequest:
            let isLast = try reader.integer("last flag", as: UInt8.self)
            guard isLast <= 1 else { throw reader.malformed("last flag is \(isLast), expected 0 or 1") }
            let count = Int(try reader.integer("file count", as: UInt16.self))
            guard count <= SyncRequest.maximumFiles else {
                throw reader.malformed("\(count) files, above the limit of \(SyncRequest.maximumFiles)")
            }
            var files: [SyncRequest.File] = []
            files.reserveCapacity(count)
            for _ in 0..<count {
                let index = try reader.integer("file index", as: UInt32.self)
                let offset = try reader.integer("offset", as: UInt64.self)
                if offset > UInt64(Int64.max) { throw reader.malformed("offset \(offset) is beyond any file") }
                let checksum = try reader.integer("prefix checksum", as: UInt32.self)
                files.append(SyncRequest.File(index: index, offset: offset, prefixChecksum: checksum))
            }
            self = .syncRequest(SyncRequest(files: files, isLast: isLast == 1))
        case .syncChunk:
            let index = try reader.integer("file index", as: UInt32.self)
            let offset = try reader.integer("offset", as: UInt64.self)
            let size = try reader.integer("uncompressed size", as: UInt32.self)
            let codec = try reader.integer("codec", as: UInt8.self)
            guard codec == DataFrame.codecLZ4Block else { throw WireError(.unknownCodec(codec)) }
            if offset > UInt64(Int64.max) { throw reader.malformed("offset \(offset) is beyond any file") }
            let compressed = reader.remainder()
            if compressed.readableBytes == 0 { throw reader.malformed("no compressed payload") }
            self = .syncChunk(SyncChunk(fileIndex: index, offset: offset, uncompressedBytes: size, compressed: compressed))
        case .syncEnd:
            self = .syncEnd(cutLSN: try reader.integer("cut LSN", as: UInt64.self))
        case .syncProgress:
            let checked = try reader.integer("bytes checked", as: UInt64.self)
            let received = try reader.integer("bytes received", as: UInt64.self)
            self = .syncProgress(SyncProgressReport(bytesChecked: checked, bytesReceived: received))
        }
        try reader.finish()
    }

    var frameType: FrameType {
        switch self {
        case .hello: .hello
        case .challenge: .challenge
        case .authenticate: .authenticate
        case .welcome: .welcome
        case .refusal: .refusal
        case .data: .data
        case .heartbeat: .heartbeat
        case .ack: .ack
        case .heartbeatReply: .heartbeatReply
        case .syncBegin: .syncBegin
        case .syncManifest: .syncManifest
        case .syncRequest: .syncRequest
        case .syncChunk: .syncChunk
        case .syncEnd: .syncEnd
        case .syncProgress: .syncProgress
        }
    }
}
