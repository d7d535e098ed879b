import CLZ4

/// Safe access to LZ4's block format: independent blocks, no frame header, no checksum.
///
/// The wire format carries each block's decompressed size and a CRC32C of its own, so the
/// frame format's header and checksums would only repeat what is already there (see
/// Docs/Protocol.md). Every call is bounded: decompression never writes past the
/// destination and never allocates more than the caller's stated maximum.
public enum LZ4Block {
    /// The largest input one block can hold (`LZ4_MAX_INPUT_SIZE`, about 2 GiB).
    public static let maximumInputBytes = 0x7E00_0000

    /// The worst-case compressed size of `inputBytes` bytes (`LZ4_compressBound`).
    public static func maximumCompressedBytes(forInputBytes inputBytes: Int) -> Int {
        precondition(inputBytes >= 0 && inputBytes <= maximumInputBytes, "input size out of LZ4 range")
        return inputBytes + inputBytes / 255 + 16
    }

    /// Decompresses one block into `destination`, which must be exactly the declared size.
    ///
    /// - Returns: the number of bytes written, always `destination.count` on success.
    /// - Throws: ``LZ4Error`` when the block is corrupt, truncated, or decompresses to a
    ///   different size than the destination.
    public static func decompress(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer
    ) throws(LZ4Error) -> Int {
        guard source.count <= Int(Int32.max), destination.count <= maximumInputBytes else {
            throw .inputTooLarge(bytes: max(source.count, destination.count))
        }
        if source.isEmpty { throw .corruptInput(inputBytes: 0) }
        // An empty destination may have no address; LZ4 still wants a valid pointer.
        var placeholder: UInt8 = 0
        let written = withUnsafeMutablePointer(to: &placeholder) { placeholderPointer in
            LZ4_decompress_safe(
                source.baseAddress!.assumingMemoryBound(to: CChar.self),
                UnsafeMutableRawPointer(destination.baseAddress ?? UnsafeMutableRawPointer(placeholderPointer))
                    .assumingMemoryBound(to: CChar.self),
                Int32(source.count),
                Int32(destination.count)
            )
        }
        guard written >= 0 else { throw .corruptInput(inputBytes: source.count) }
        guard Int(written) == destination.count else {
            throw .sizeMismatch(declared: destination.count, actual: Int(written))
        }
        return Int(written)
    }

    /// Decompresses one block whose decompressed size is declared by the sender.
    ///
    /// The declared size is checked against `maximumBytes` before anything is allocated.
    public static func decompress(
        _ source: some Collection<UInt8>,
        declaredSize: Int,
        maximumBytes: Int
    ) throws(LZ4Error) -> [UInt8] {
        guard declaredSize >= 0, declaredSize <= maximumBytes else {
            throw .declaredSizeAboveLimit(declared: declaredSize, limit: maximumBytes)
        }
        let sourceBytes = Array(source)
        var result: Result<Int, LZ4Error> = .success(0)
        let output = [UInt8](unsafeUninitializedCapacity: declaredSize) { buffer, initialized in
            result = sourceBytes.withUnsafeBytes { input in
                Result { () throws(LZ4Error) in try decompress(input, into: UnsafeMutableRawBufferPointer(buffer)) }
            }
            initialized = (try? result.get()) ?? 0
        }
        _ = try result.get()
        return output
    }
}

/// Compresses LZ4 blocks with one reusable state, so the hot path allocates nothing per call.
///
/// Not thread-safe: give each compressing task its own compressor.
public final class LZ4BlockCompressor {
    private let state: UnsafeMutableRawPointer
    /// LZ4's speed knob: 1 is the default ratio; larger values trade ratio for speed.
    public let acceleration: Int32

    public init(acceleration: Int32 = 1) {
        self.acceleration = max(1, acceleration)
        self.state = UnsafeMutableRawPointer.allocate(
            byteCount: Int(LZ4_sizeofState()),
            alignment: MemoryLayout<UInt64>.alignment
        )
    }

    deinit {
        state.deallocate()
    }

    /// Compresses `source` into `destination` as one independent block.
    ///
    /// - Returns: the number of compressed bytes written.
    /// - Throws: ``LZ4Error`` when the source is too large for a block or the destination
    ///   is smaller than ``LZ4Block/maximumCompressedBytes(forInputBytes:)``.
    public func compress(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer
    ) throws(LZ4Error) -> Int {
        guard source.count <= LZ4Block.maximumInputBytes else { throw .inputTooLarge(bytes: source.count) }
        let needed = LZ4Block.maximumCompressedBytes(forInputBytes: source.count)
        guard destination.count >= needed else {
            throw .outputTooSmall(capacity: destination.count, needed: needed)
        }
        var placeholder: UInt8 = 0
        let written = withUnsafeMutablePointer(to: &placeholder) { placeholderPointer in
            LZ4_compress_fast_extState(
            state,
            UnsafeRawPointer(source.baseAddress ?? UnsafeRawPointer(placeholderPointer)).assumingMemoryBound(to: CChar.self),
            destination.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(source.count),
            Int32(min(destination.count, Int(Int32.max))),
            acceleration
            )
        }
        // With a destination of compressBound bytes LZ4 cannot fail; a zero here is a bug in liblz4.
        precondition(written > 0, "LZ4_compress_fast_extState failed with a sufficient destination")
        return Int(written)
    }

    /// Compresses a byte array into a new array: a convenience for tests and tools.
    public func compress(_ source: [UInt8]) throws(LZ4Error) -> [UInt8] {
        let capacity = LZ4Block.maximumCompressedBytes(forInputBytes: source.count)
        var result: Result<Int, LZ4Error> = .success(0)
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            result = source.withUnsafeBytes { input in
                Result { () throws(LZ4Error) in try compress(input, into: UnsafeMutableRawBufferPointer(buffer)) }
            }
            initialized = (try? result.get()) ?? 0
        }
        _ = try result.get()
        return output
    }
}
