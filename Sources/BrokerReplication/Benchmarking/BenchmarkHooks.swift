import LZ4
import NIOCore

// For the micro-benchmarks only; not API.
//
// The package-benchmark micro-benchmarks live in their own package (Benchmarks/Package.swift)
// so that a broker embedding this module never builds package-benchmark. A separate package
// cannot see `package` declarations, so these thin wrappers expose the hot paths they measure
// under `@_spi(Benchmarks)`. Each wrapper calls the same code the leader or follower runs and
// adds nothing of its own to the measured work. They may change or go away in any release.

/// A batch sealed into one compressed, checksummed data frame, as the leader shares it
/// between followers. For the micro-benchmarks only; not API.
@_spi(Benchmarks) public struct BenchmarkSealedBatch: Sendable {
    let sealed: SealedBatch

    /// Records in the batch.
    public var recordCount: Int { Int(sealed.recordCount) }
    /// Uncompressed bytes of the encoded records.
    public var payloadBytes: Int { sealed.payloadBytes }
    /// Bytes on the wire, frame header included.
    public var wireBytes: Int { sealed.wireBytes }
}

/// Encodes append records into a batch and seals it with LZ4 and a CRC32C, exactly as the
/// leader does for each batch. For the micro-benchmarks only; not API.
@_spi(Benchmarks) public struct BenchmarkBatchEncoder {
    // The leader's own defaults: a 64 KiB initial payload buffer and one compressor, reused.
    private var builder = BatchBuilder()
    private let compressor = LZ4BlockCompressor()
    private var nextLSN: UInt64 = 1

    public init() {}

    /// Uncompressed bytes collected since the last seal.
    public var payloadBytes: Int { builder.payloadBytes }

    /// Adds an append record; LSNs are given consecutively, as the leader does.
    public mutating func append(to path: ReplicatedPath, offset: UInt64, bytes: ByteBuffer) {
        builder.append(.append(path: path, offset: offset, bytes: bytes), lsn: nextLSN)
        nextLSN += 1
    }

    /// Compresses the collected records into one data frame and starts an empty batch.
    public mutating func seal() -> BenchmarkSealedBatch {
        BenchmarkSealedBatch(sealed: builder.seal(using: compressor))
    }
}

/// One follower's bounded outbound queue on the leader. For the micro-benchmarks only; not API.
@_spi(Benchmarks) public struct BenchmarkOutboundQueue {
    private var queue: OutboundQueue

    public init(maximumBytes: Int, maximumFrames: Int) {
        queue = OutboundQueue(maximumBytes: maximumBytes, maximumFrames: maximumFrames)
    }

    /// Offers a frame without waiting; false means full (the leader would evict the follower).
    public mutating func trySend(_ batch: BenchmarkSealedBatch) -> Bool {
        queue.trySend(batch.sealed) == .enqueued
    }

    /// Takes frames from the front as the follower's writer does; returns how many it took.
    public mutating func take(upToBytes maximumBytes: Int) -> Int {
        queue.take(upToBytes: maximumBytes).count
    }
}

/// A batch's records after decoding, ready to apply. For the micro-benchmarks only; not API.
@_spi(Benchmarks) public struct BenchmarkDecodedBatch: Sendable {
    let records: [ReplicationRecord]

    public var recordCount: Int { records.count }
}

/// The follower's receive path for one frame. For the micro-benchmarks only; not API.
@_spi(Benchmarks) public struct BenchmarkBatchDecoder: Sendable {
    private let decoder = BatchDecoder()

    public init() {}

    /// Verifies the frame's header and CRC32C, reads its data message, decompresses it and
    /// decodes its records: what a follower does with each data frame before applying it.
    public func decode(_ batch: BenchmarkSealedBatch) throws -> BenchmarkDecodedBatch {
        var parser = FrameParser(preamble: .none)
        var bytes = batch.sealed.frame
        guard let frame = try parser.next(from: &bytes), case .data(let data) = try WireMessage(decoding: frame) else {
            preconditionFailure("a sealed batch is always one complete data frame")
        }
        return BenchmarkDecodedBatch(records: try decoder.records(of: data))
    }
}

/// The follower's record applier over a data directory, without fsync.
/// For the micro-benchmarks only; not API.
@_spi(Benchmarks) public final class BenchmarkRecordApplier {
    private let applier: RecordApplier

    /// Opens (and creates) the data directory at `path`. Nothing is fsynced (`durable: false`),
    /// so the benchmark measures the applier and the writes, not the disk's flush latency.
    public init(dataDirectory path: String) throws {
        applier = RecordApplier(directory: try DataDirectory(path: path), durable: false)
    }

    /// Applies the batch's records in order.
    public func apply(_ batch: BenchmarkDecodedBatch) throws {
        try applier.apply(batch.records)
    }

    /// Closes the files the applier keeps open.
    public func closeAll() {
        applier.closeAll()
    }
}
