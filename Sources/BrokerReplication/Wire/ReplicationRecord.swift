import NIOCore

/// One durable change to the data directory, as it travels inside a batch.
///
/// A record's LSN is not stored in it: the batch carries its first LSN, and record i of
/// the batch has LSN `firstLSN + i`.
@_spi(Benchmarks) public enum ReplicationRecord: Hashable, Sendable {
    /// Append `bytes` to the file at `path`, creating it when missing. `offset` is the
    /// file's size before the append on the leader: the follower writes there, so applying
    /// a record twice (a replay after a crash before the ack) leaves the same bytes.
    case append(path: ReplicatedPath, offset: UInt64, bytes: ByteBuffer)
    /// One chunk of a whole-file replacement, to be written at `offset` of the new file. A
    /// replacement of up to one chunk is a single record with both flags; a larger one is a
    /// run of chunks that the follower collects in a temporary file and renames into place
    /// at the last chunk.
    case replace(path: ReplicatedPath, offset: UInt64, chunk: ByteBuffer, flags: ReplaceFlags)
    /// Delete the file at `path`; deleting a missing file is not an error.
    case delete(path: ReplicatedPath)

    enum Kind: UInt8, Sendable {
        case append = 1
        case replace = 2
        case delete = 3
    }

    @_spi(Benchmarks) public struct ReplaceFlags: OptionSet, Hashable, Sendable {
        @_spi(Benchmarks) public let rawValue: UInt8
        @_spi(Benchmarks) public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Start a new temporary file for this path (dropping any half-received one).
        static let firstChunk = ReplaceFlags(rawValue: 1 << 0)
        /// Make the temporary file durable and rename it over the path.
        static let lastChunk = ReplaceFlags(rawValue: 1 << 1)
        static let whole: ReplaceFlags = [.firstChunk, .lastChunk]
    }

    var path: ReplicatedPath {
        switch self {
        case .append(let path, _, _), .replace(let path, _, _, _), .delete(let path): path
        }
    }

    /// Bytes this record takes in an uncompressed batch.
    var encodedBytes: Int {
        switch self {
        case .append(let path, _, let bytes): Self.encodedBytes(kind: .append, pathBytes: path.string.utf8.count, dataBytes: bytes.readableBytes)
        case .replace(let path, _, let chunk, _): Self.encodedBytes(kind: .replace, pathBytes: path.string.utf8.count, dataBytes: chunk.readableBytes)
        case .delete(let path): Self.encodedBytes(kind: .delete, pathBytes: path.string.utf8.count, dataBytes: 0)
        }
    }

    /// Bytes a record of this shape takes: kind 1, [flags 1], path length 2, path,
    /// [offset 8, data length 4, data].
    static func encodedBytes(kind: Kind, pathBytes: Int, dataBytes: Int) -> Int {
        switch kind {
        case .append: 1 + 2 + pathBytes + 8 + 4 + dataBytes
        case .replace: 1 + 1 + 2 + pathBytes + 8 + 4 + dataBytes
        case .delete: 1 + 2 + pathBytes
        }
    }

    /// The smallest record (a delete of a one-byte path), to bound a batch's record count by its size.
    static let minimumEncodedBytes = 4

    /// Appends this record to an uncompressed batch payload.
    @_spi(Benchmarks) public func write(to payload: inout ByteBuffer) {
        switch self {
        case .append(let path, let offset, let bytes):
            payload.writeInteger(Kind.append.rawValue)
            payload.writeLongString(path.string)
            payload.writeInteger(offset)
            payload.writeInteger(UInt32(bytes.readableBytes))
            payload.writeImmutableBuffer(bytes)
        case .replace(let path, let offset, let chunk, let flags):
            payload.writeInteger(Kind.replace.rawValue)
            payload.writeInteger(flags.rawValue)
            payload.writeLongString(path.string)
            payload.writeInteger(offset)
            payload.writeInteger(UInt32(chunk.readableBytes))
            payload.writeImmutableBuffer(chunk)
        case .delete(let path):
            payload.writeInteger(Kind.delete.rawValue)
            payload.writeLongString(path.string)
        }
    }
}
