import LZ4
import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// Builders for frames, valid and deliberately broken, shared by the wire tests.
enum TestFrames {
    static func path(_ string: String) -> ReplicatedPath { try! ReplicatedPath(string) }

    /// The bytes of one complete frame for `message`.
    static func bytes(of message: WireMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        message.write(to: &buffer)
        return buffer
    }

    /// A frame with any type byte and body, with a correct header and checksum.
    static func rawFrame(type: UInt8, body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(body.count))
        buffer.writeInteger(type)
        buffer.writeInteger(Frame.checksum(type: type, body: ByteBuffer(bytes: body).readableBytesView))
        buffer.writeBytes(body)
        return buffer
    }

    /// A data frame whose compressed payload holds exactly `payload`, with any header values.
    static func dataFrame(
        payload: [UInt8],
        firstLSN: UInt64 = 1,
        recordCount: UInt32,
        declaredBytes: UInt32? = nil
    ) -> DataFrame {
        let compressed = try! LZ4BlockCompressor().compress(payload)
        return DataFrame(
            firstLSN: firstLSN,
            recordCount: recordCount,
            uncompressedBytes: declaredBytes ?? UInt32(payload.count),
            codec: DataFrame.codecLZ4Block,
            compressed: ByteBuffer(bytes: compressed)
        )
    }

    /// The encoded batch payload of `records`.
    static func payload(_ records: [ReplicationRecord]) -> [UInt8] {
        var buffer = ByteBuffer()
        for record in records { record.write(to: &buffer) }
        return Array(buffer.readableBytesView)
    }

    /// A sealed data frame with `records`, as the leader builds it.
    static func sealed(_ records: [ReplicationRecord], firstLSN: UInt64 = 1) -> SealedBatch {
        var builder = BatchBuilder()
        for (offset, record) in records.enumerated() { builder.append(record, lsn: firstLSN + UInt64(offset)) }
        return builder.seal(using: LZ4BlockCompressor())
    }

    /// One of every control message, with representative values.
    static let controlMessages: [WireMessage] = [
        .hello(Hello(clusterID: "orders-eu", nodeID: "follower-1", followerNonce: Array(repeating: 7, count: 32))),
        .challenge(Challenge(leaderNodeID: "leader-0", leaderNonce: Array(0..<32), leaderProof: Array(repeating: 0xAB, count: 32))),
        .authenticate(Authenticate(followerProof: Array(repeating: 0xCD, count: 32), epoch: 3, lastDurableLSN: 1_000_000)),
        .welcome(Welcome(epoch: 3, resync: .resume, nextLSN: 1_000_001)),
        .welcome(Welcome(epoch: 4, resync: .fullSync, nextLSN: 1)),
        .refusal(Refusal(code: .authenticationFailed, reason: "wrong shared secret")),
        .refusal(Refusal(code: Refusal.Code(rawValue: 200), reason: "")),
        .heartbeat(Heartbeat(leaderLSN: 99, sentAtNanoseconds: 123_456_789)),
        .ack(durableLSN: 42),
        .heartbeatReply(HeartbeatReply(echoedSentAtNanoseconds: 123_456_789, durableLSN: 41)),
        .syncBegin(SyncBegin(cutLSN: 500, fileCount: 2)),
        .syncManifest(firstIndex: 0, entries: [
            SyncManifestEntry(path: path("a/b"), size: 10, chunkChecksums: [0xDEAD_BEEF]),
            SyncManifestEntry(path: path("c"), size: 0, chunkChecksums: []),
            SyncManifestEntry(path: path("d"), size: 2 << 20 | 1, chunkChecksums: [1, 2, 3]),
        ]),
        .syncRequest(SyncRequest(files: [.init(index: 0, offset: 0, prefixChecksum: 0), .init(index: 2, offset: 1_048_577, prefixChecksum: 9)], isLast: true)),
        .syncRequest(SyncRequest(files: [], isLast: false)),
        .syncChunk(SyncChunk(fileIndex: 1, offset: 4096, uncompressedBytes: 3, compressed: ByteBuffer(bytes: [0x30, 0x61, 0x62, 0x63]))),
        .syncEnd(cutLSN: 500),
        .syncProgress(SyncProgressReport(bytesChecked: 1 << 33, bytesReceived: 7)),
    ]

    /// A few records of every kind, with a non-ASCII path among them.
    static let sampleRecords: [ReplicationRecord] = [
        .append(path: path("queues/orders/segment.0001"), offset: 0, bytes: ByteBuffer(string: #"{"id":1,"type":"order.created"}"#)),
        .append(path: path("queues/orders/segment.0001"), offset: 31, bytes: ByteBuffer(string: "")),
        .replace(path: path("definitions.json"), offset: 0, chunk: ByteBuffer(string: #"{"queues":["orders"]}"#), flags: .whole),
        .replace(path: path("big/file"), offset: 0, chunk: ByteBuffer(repeating: 1, count: 1000), flags: .firstChunk),
        .replace(path: path("big/file"), offset: 1000, chunk: ByteBuffer(repeating: 2, count: 10), flags: []),
        .replace(path: path("big/file"), offset: 1010, chunk: ByteBuffer(repeating: 3, count: 5), flags: .lastChunk),
        .delete(path: path("queues/orders/segment.0000")),
        .append(path: path("köer/beställningar/segment"), offset: 1 << 40, bytes: ByteBuffer(bytes: Array(0...255))),
    ]
}
