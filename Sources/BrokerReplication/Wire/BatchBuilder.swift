import LZ4
import NIOCore

/// A batch sealed into one complete data frame: compressed once, then shared by every follower.
@_spi(Benchmarks) public struct SealedBatch: Hashable, Sendable {
    /// The whole frame, header included, ready to write to any number of channels.
    @_spi(Benchmarks) public var frame: ByteBuffer
    var firstLSN: UInt64
    var recordCount: UInt32
    /// Uncompressed payload bytes (the records as encoded).
    var payloadBytes: Int
    /// When the batch was sealed: a follower that has acked everything before it was caught
    /// up at this time (for the in-sync decision).
    var sealedAt: ContinuousClock.Instant = .now

    var lastLSN: UInt64 { firstLSN + UInt64(recordCount) - 1 }
    /// Bytes on the wire for this batch, frame header included.
    var wireBytes: Int { frame.readableBytes }
    /// Bytes of memory the frame holds: NIO rounds a buffer's capacity up to a power of two.
    var memoryBytes: Int { frame.capacity }
}

/// Collects records with consecutive LSNs into one uncompressed payload, then seals them
/// into a compressed data frame.
///
/// The payload and compression buffers are reused from batch to batch, so steady-state
/// encoding allocates only the sealed frame: one allocation per batch, not per record.
@_spi(Benchmarks) public struct BatchBuilder: Sendable {
    private var payload: ByteBuffer
    /// Compression writes here first: it needs room for the worst case, and a frame that kept
    /// that room would pin about three times its size in every queue and the backlog.
    private var compressed: ByteBuffer
    private let allocator: ByteBufferAllocator
    private(set) var firstLSN: UInt64 = 0
    private(set) var recordCount: UInt32 = 0

    @_spi(Benchmarks) public init(allocator: ByteBufferAllocator = ByteBufferAllocator(), initialCapacity: Int = 64 * 1024) {
        self.allocator = allocator
        self.payload = allocator.buffer(capacity: initialCapacity)
        self.compressed = allocator.buffer(capacity: LZ4Block.maximumCompressedBytes(forInputBytes: initialCapacity))
    }

    var isEmpty: Bool { recordCount == 0 }
    /// Uncompressed bytes collected so far.
    @_spi(Benchmarks) public var payloadBytes: Int { payload.readableBytes }
    /// The LSN the next record must have.
    var nextLSN: UInt64 { firstLSN + UInt64(recordCount) }

    /// Adds a record with LSN `lsn`, which must follow the batch's last one.
    @_spi(Benchmarks) public mutating func append(_ record: ReplicationRecord, lsn: UInt64) {
        if isEmpty {
            precondition(lsn > 0, "LSNs start at 1")
            firstLSN = lsn
        } else {
            precondition(lsn == nextLSN, "records in a batch have consecutive LSNs")
        }
        record.write(to: &payload)
        recordCount += 1
    }

    /// Compresses the collected records into one data frame and starts an empty batch.
    @_spi(Benchmarks) public mutating func seal(using compressor: LZ4BlockCompressor) -> SealedBatch {
        precondition(!isEmpty, "sealing an empty batch")
        let payloadBytes = payload.readableBytes
        let bound = LZ4Block.maximumCompressedBytes(forInputBytes: payloadBytes)
        compressed.clear()
        payload.withUnsafeReadableBytes { source in
            _ = compressed.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                // Cannot fail: the destination holds the worst case and batches are far below 2 GiB.
                try! compressor.compress(source, into: destination)
            }
        }
        // Sized for the compressed bytes, not the worst case (NIO still rounds the capacity up
        // to a power of two; the backlog counts that, see SealedBatch.memoryBytes).
        var frame = allocator.buffer(capacity: Frame.headerBytes + DataFrame.headerBytes + compressed.readableBytes)
        frame.writeRepeatingByte(0, count: Frame.headerBytes)
        frame.writeInteger(firstLSN)
        frame.writeInteger(recordCount)
        frame.writeInteger(UInt32(payloadBytes))
        frame.writeInteger(DataFrame.codecLZ4Block)
        frame.writeImmutableBuffer(compressed)
        Frame.fillHeader(in: &frame, at: 0, type: .data)
        let sealed = SealedBatch(frame: frame, firstLSN: firstLSN, recordCount: recordCount, payloadBytes: payloadBytes)
        payload.clear()
        recordCount = 0
        firstLSN = 0
        return sealed
    }
}
