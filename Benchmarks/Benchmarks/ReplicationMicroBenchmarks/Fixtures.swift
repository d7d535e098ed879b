@_spi(Benchmarks) import BrokerReplication
import BrokerReplicationTesting
import Foundation
import Logging
import NIOCore

/// The leader seals a batch once its records reach this many bytes (its default `batchBytes`).
let batchBytes = 64 * 1024

/// One append as the leader records it: a corpus message, the file it goes to, and the size
/// that file had reached before it.
struct AppendRecord {
    var path: ReplicatedPath
    var offset: UInt64
    var bytes: ByteBuffer
}

/// `count` broker-like JSON events (about 150 bytes each) spread round-robin over eight
/// segment files, each at the offset its file had reached: the records a leader makes.
func brokerAppendRecords(count: Int) -> [AppendRecord] {
    var corpus = BrokerMessageCorpus()
    let paths = (0..<8).map { try! ReplicatedPath("queues/q\($0)/segment.0000000001") }
    var fileSizes = [UInt64](repeating: 0, count: paths.count)
    return (0..<count).map { index in
        let file = index % paths.count
        let bytes = ByteBuffer(bytes: corpus.nextMessage())
        defer { fileSizes[file] += UInt64(bytes.readableBytes) }
        return AppendRecord(path: paths[file], offset: fileSizes[file], bytes: bytes)
    }
}

/// Seals `records` into 64 KiB batches in order, as the leader does.
func sealedBatches(of records: [AppendRecord]) -> [BenchmarkSealedBatch] {
    var encoder = BenchmarkBatchEncoder()
    var batches: [BenchmarkSealedBatch] = []
    for record in records {
        encoder.append(to: record.path, offset: record.offset, bytes: record.bytes)
        if encoder.payloadBytes >= batchBytes { batches.append(encoder.seal()) }
    }
    return batches
}

/// The leader's batch encoder, fed from a fixed set of records in a loop.
final class EncodeFixture {
    private let records = brokerAppendRecords(count: 4096)
    private var encoder = BenchmarkBatchEncoder()
    private var nextRecord = 0

    /// Adds records until the batch is full, then seals it: the leader's work per batch.
    func sealNextBatch() -> BenchmarkSealedBatch {
        while encoder.payloadBytes < batchBytes {
            let record = records[nextRecord]
            encoder.append(to: record.path, offset: record.offset, bytes: record.bytes)
            nextRecord = (nextRecord + 1) % records.count
        }
        return encoder.seal()
    }
}

/// A follower's receive path over a run of consecutive batches and a temporary data directory.
///
/// The batches (about 4 MiB of records, some 65 batches) are applied in order and then again
/// from the first, so that almost every apply appends at the end of its files. Going back to
/// the first batch cuts each of the eight files back once (a replay), once per round.
final class ReceiveFixture {
    let batches = sealedBatches(of: brokerAppendRecords(count: 64 * 340))
    let decoder = BenchmarkBatchDecoder()
    private var nextBatch = 0
    private var directory: URL?
    private(set) var applier: BenchmarkRecordApplier?

    /// The next batch in LSN order, from the first again after the last.
    func takeNextBatch() -> BenchmarkSealedBatch {
        defer { nextBatch = (nextBatch + 1) % batches.count }
        return batches[nextBatch]
    }

    func setUp() throws {
        let directory = try makeTemporaryDirectory("follower")
        self.directory = directory
        applier = try BenchmarkRecordApplier(dataDirectory: directory.path)
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
    let messages = brokerAppendRecords(count: 8192).map { (path: $0.path.string, bytes: $0.bytes) }
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
