@_spi(Benchmarks) import BrokerReplication
import BrokerReplicationTesting
import Foundation
import LZ4
import Logging
import NIOCore

/// The leader seals a batch once its records reach this many bytes (its default `batchBytes`).
let batchBytes = 64 * 1024

/// `count` append records of broker-like JSON events (about 150 bytes each) spread
/// round-robin over eight segment files, each at the offset its file had reached: the records
/// a leader makes.
func brokerAppendRecords(count: Int) -> [ReplicationRecord] {
    var corpus = BrokerMessageCorpus()
    let paths = (0..<8).map { try! ReplicatedPath("queues/q\($0)/segment.0000000001") }
    var fileSizes = [UInt64](repeating: 0, count: paths.count)
    return (0..<count).map { index in
        let file = index % paths.count
        let bytes = ByteBuffer(bytes: corpus.nextMessage())
        defer { fileSizes[file] += UInt64(bytes.readableBytes) }
        return .append(path: paths[file], offset: fileSizes[file], bytes: bytes)
    }
}

/// Seals `records` into 64 KiB batches in order, with LSNs from 1, as the leader does.
func sealedBatches(of records: [ReplicationRecord]) -> [SealedBatch] {
    var builder = BatchBuilder()
    let compressor = LZ4BlockCompressor()
    var batches: [SealedBatch] = []
    for (index, record) in records.enumerated() {
        builder.append(record, lsn: UInt64(index + 1))
        if builder.payloadBytes >= batchBytes { batches.append(builder.seal(using: compressor)) }
    }
    return batches
}

/// The leader's batch builder and compressor (its own defaults, reused from batch to batch),
/// fed from a fixed set of records in a loop.
final class EncodeFixture {
    private let records = brokerAppendRecords(count: 4096)
    private var builder = BatchBuilder()
    private let compressor = LZ4BlockCompressor()
    private var nextRecord = 0
    private var nextLSN: UInt64 = 1

    /// Adds records until the batch is full, then seals it: the leader's work per batch.
    func sealNextBatch() -> SealedBatch {
        while builder.payloadBytes < batchBytes {
            builder.append(records[nextRecord], lsn: nextLSN)
            nextLSN += 1
            nextRecord = (nextRecord + 1) % records.count
        }
        return builder.seal(using: compressor)
    }
}

/// One batch payload (the records encoded, uncompressed, at least 64 KiB) and room for its
/// worst-case compression: LZ4 alone, the one-core ceiling of the leader's batch path.
final class CompressFixture {
    let payload: [UInt8]
    private var compressed: [UInt8]
    private let compressor = LZ4BlockCompressor()

    init() {
        var buffer = ByteBuffer()
        for record in brokerAppendRecords(count: 4096) where buffer.readableBytes < batchBytes {
            record.write(to: &buffer)
        }
        payload = Array(buffer.readableBytesView)
        compressed = [UInt8](repeating: 0, count: LZ4Block.maximumCompressedBytes(forInputBytes: payload.count))
    }

    /// Compresses the payload; returns the compressed size in bytes.
    func compressPayload() throws -> Int {
        try payload.withUnsafeBytes { source in
            try compressed.withUnsafeMutableBytes { destination in try compressor.compress(source, into: destination) }
        }
    }
}

/// A follower's receive path over a run of consecutive batches and a temporary data directory.
///
/// The batches (about 4 MiB of records, some 65 batches) are applied in order and then again
/// from the first, so that almost every apply appends at the end of its files. Going back to
/// the first batch cuts each of the eight files back once (a replay), once per round.
final class ReceiveFixture {
    let batches = sealedBatches(of: brokerAppendRecords(count: 64 * 340))
    let decoder = BatchDecoder()
    private var nextBatch = 0
    private var directory: URL?
    private(set) var applier: RecordApplier?

    /// The next batch in LSN order, from the first again after the last.
    func takeNextBatch() -> SealedBatch {
        defer { nextBatch = (nextBatch + 1) % batches.count }
        return batches[nextBatch]
    }

    /// What a follower does with each data frame before applying it: checks the frame's
    /// header and CRC32C, reads its data header, decompresses it and decodes its records.
    func decode(_ batch: SealedBatch) throws -> [ReplicationRecord] {
        var parser = FrameParser(preamble: .none)
        var bytes = batch.frame
        guard let frame = try parser.next(from: &bytes) else {
            preconditionFailure("a sealed batch is always one complete data frame")
        }
        return try decoder.records(of: DataFrame(decoding: frame))
    }

    func setUp() throws {
        let directory = try makeTemporaryDirectory("follower")
        self.directory = directory
        // durable: false, nothing is fsynced: the benchmark measures the applier and the
        // writes, not the disk's flush latency.
        applier = RecordApplier(directory: try DataDirectory(path: directory.path), durable: false)
        nextBatch = 0
    }

    func tearDown() throws {
        applier?.closeAll()
        applier = nil
        if let directory { try FileManager.default.removeItem(at: directory) }
        directory = nil
    }
}

/// A leader with no followers and no `run()`: `append` writes the file and batches the record,
/// and sealing a full batch puts it in the backlog only.
final class LeaderFixture {
    /// The messages with the file each goes to, made once.
    let messages = brokerAppendRecords(count: 8192).map { record -> (path: String, bytes: ByteBuffer) in
        guard case .append(let path, _, let bytes) = record else { preconditionFailure("broker records are appends") }
        return (path.string, bytes)
    }
    private var nextMessage = 0
    private var directory: URL?
    private(set) var leader: ReplicationLeader?

    /// The next message, round-robin over the eight files.
    func takeNextMessage() -> (path: String, bytes: ByteBuffer) {
        defer { nextMessage = (nextMessage + 1) % messages.count }
        return messages[nextMessage]
    }

    func setUp() throws {
        let directory = try makeTemporaryDirectory("leader")
        self.directory = directory
        let configuration = ReplicationLeaderConfiguration(dataDirectory: directory.path, clusterID: "bench", nodeID: "leader")
        // Its "leader ready" line would land in the benchmark's output.
        let silent = Logger(label: "micro-benchmarks") { _ in SwiftLogNoOpLogHandler() }
        leader = try ReplicationLeader(
            configuration: configuration, secret: try SharedSecret(bytes: [UInt8](repeating: 7, count: 32)), logger: silent)
    }

    func tearDown() throws {
        leader = nil
        if let directory { try FileManager.default.removeItem(at: directory) }
        directory = nil
    }
}

private func makeTemporaryDirectory(_ role: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("brpl-micro-benchmarks-\(role)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}
