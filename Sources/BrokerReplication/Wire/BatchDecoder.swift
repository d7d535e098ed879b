import LZ4
import NIOCore

/// Turns a data frame back into records, checking every size before allocating for it.
@_spi(Benchmarks) public struct BatchDecoder: Sendable {
    let limits: WireLimits
    private let allocator: ByteBufferAllocator

    @_spi(Benchmarks) public init(limits: WireLimits = .default, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.limits = limits
        self.allocator = allocator
    }

    /// Paths decoded before, so that a stream of records to the same few files validates and
    /// allocates each path once, not once per record. Direct-mapped by a hash of the path's
    /// bytes; a collision only costs a decode.
    struct PathCache: Sendable {
        private static let slots = 64
        private var paths: [ReplicatedPath?] = Array(repeating: nil, count: slots)

        init() {}

        /// The cached path with exactly these bytes, or the result of `decode` (then cached).
        mutating func path(
            for bytes: UnsafeRawBufferPointer,
            decode: (UnsafeRawBufferPointer) throws(WireError) -> ReplicatedPath
        ) throws(WireError) -> ReplicatedPath {
            // FNV-1a: a few cycles per byte, and no allocation.
            var hash: UInt32 = 2_166_136_261
            for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
            let slot = Int(hash % UInt32(Self.slots))
            if let cached = paths[slot], cached.hasUTF8(equalTo: bytes) { return cached }
            let path = try decode(bytes)
            paths[slot] = path
            return path
        }
    }

    /// Decompresses and parses `frame`'s records, in LSN order.
    ///
    /// The records' byte buffers are slices of one decompressed buffer: no copy per record.
    @_spi(Benchmarks) public func records(of frame: DataFrame) throws(WireError) -> [ReplicationRecord] {
        var paths = PathCache()
        return try records(of: frame, paths: &paths)
    }

    /// Decompresses and parses `frame`'s records, reusing the paths of earlier frames: with a
    /// cache kept across a stream's frames, decoding allocates nothing per record.
    func records(of frame: DataFrame, paths: inout PathCache) throws(WireError) -> [ReplicationRecord] {
        let declaredBytes = Int(frame.uncompressedBytes)
        let declaredCount = Int(frame.recordCount)
        guard declaredBytes <= limits.maximumBatchBytes else {
            throw WireError(.batchTooLarge(declaredBytes: declaredBytes, limit: limits.maximumBatchBytes))
        }
        guard declaredCount <= limits.maximumRecordsPerBatch else {
            throw WireError(.tooManyRecords(declared: declaredCount, limit: limits.maximumRecordsPerBatch))
        }
        guard declaredCount * ReplicationRecord.minimumEncodedBytes <= declaredBytes else {
            throw WireError(.malformedBatch(reason: "\(declaredCount) records cannot fit in \(declaredBytes) bytes"))
        }

        var payload = allocator.buffer(capacity: declaredBytes)
        var result: Result<Int, LZ4Error> = .success(0)
        _ = frame.compressed.withUnsafeReadableBytes { source in
            payload.writeWithUnsafeMutableBytes(minimumWritableBytes: declaredBytes) { destination in
                let exact = UnsafeMutableRawBufferPointer(rebasing: destination.prefix(declaredBytes))
                result = Result { () throws(LZ4Error) in try LZ4Block.decompress(source, into: exact) }
                return (try? result.get()) ?? 0
            }
        }
        if case .failure(let error) = result { throw WireError(.decompressionFailed(error)) }

        var records: [ReplicationRecord] = []
        records.reserveCapacity(declaredCount)
        for index in 0..<declaredCount {
            records.append(try readRecord(from: &payload, index: index, paths: &paths))
        }
        if payload.readableBytes > 0 {
            throw WireError(.malformedBatch(reason: "\(payload.readableBytes) bytes left after \(declaredCount) records"))
        }
        return records
    }

    private func readRecord(from payload: inout ByteBuffer, index: Int, paths: inout PathCache) throws(WireError) -> ReplicationRecord {
        func short(_ field: String) -> WireError {
            WireError(.malformedBatch(reason: "record \(index) is cut short in its \(field)"))
        }
        guard let rawKind = payload.readInteger(as: UInt8.self) else { throw short("kind") }
        guard let kind = ReplicationRecord.Kind(rawValue: rawKind) else { throw WireError(.unknownRecordKind(rawKind)) }
        var flags = ReplicationRecord.ReplaceFlags()
        if kind == .replace {
            guard let rawFlags = payload.readInteger(as: UInt8.self) else { throw short("flags") }
            flags = ReplicationRecord.ReplaceFlags(rawValue: rawFlags)
            guard flags.isSubset(of: .whole) else {
                throw WireError(.malformedBatch(reason: "record \(index) has unknown replace flags 0b\(String(rawFlags, radix: 2))"))
            }
        }
        guard let pathLength = payload.readInteger(as: UInt16.self) else { throw short("path length") }
        guard Int(pathLength) <= limits.maximumPathBytes else {
            throw WireError(.invalidPath(path: "<\(pathLength) bytes>", reason: "above the limit of \(limits.maximumPathBytes) bytes"))
        }
        guard let pathBytes = payload.readSlice(length: Int(pathLength)) else { throw short("path") }
        let maximumPathBytes = limits.maximumPathBytes
        let decoded = pathBytes.withUnsafeReadableBytes { bytes in
            Result { () throws(WireError) in
                try paths.path(for: bytes) { bytes throws(WireError) in
                    guard let string = String(validating: bytes, as: UTF8.self) else {
                        throw WireError(.invalidPath(path: String(decoding: bytes, as: UTF8.self), reason: "not valid UTF-8"))
                    }
                    return try ReplicatedPath(validating: string, maximumBytes: maximumPathBytes)
                }
            }
        }
        let path = try decoded.get()
        if kind == .delete { return .delete(path: path) }

        guard let offset = payload.readInteger(as: UInt64.self) else { throw short("offset") }
        guard offset <= UInt64(Int64.max) else {
            throw WireError(.malformedBatch(reason: "record \(index) has offset \(offset), beyond any file size"))
        }
        guard let dataLength = payload.readInteger(as: UInt32.self) else { throw short("data length") }
        guard offset + UInt64(dataLength) <= UInt64(Int64.max) else {
            throw WireError(.malformedBatch(reason: "record \(index) ends beyond any file size"))
        }
        guard let data = payload.readSlice(length: Int(dataLength)) else {
            throw WireError(.malformedBatch(reason: "record \(index) declares \(dataLength) data bytes, only \(payload.readableBytes) left"))
        }
        return kind == .append
            ? .append(path: path, offset: offset, bytes: data)
            : .replace(path: path, offset: offset, chunk: data, flags: flags)
    }
}

/// Checks that data frames arrive with no gap and no repeat: each starts right after the last.
struct LSNSequence: Hashable, Sendable {
    /// The LSN the next data frame must start with.
    private(set) var nextLSN: UInt64

    init(nextLSN: UInt64) {
        self.nextLSN = nextLSN
    }

    mutating func accept(_ frame: DataFrame) throws(WireError) {
        guard frame.firstLSN == nextLSN else {
            throw WireError(.lsnGap(expected: nextLSN, received: frame.firstLSN))
        }
        nextLSN = frame.lastLSN + 1
    }
}
