import NIOCore

/// ``ChunkIndex`` on disk, in `.brpl/chunk-index`, so a restarted node trusts what it read
/// before instead of reading every file again.
///
/// Layout, big-endian: magic "BRCI", version `u16` 1, chunk bytes `u32`, entry count `u32`;
/// per entry: path length `u16` and its UTF-8 bytes, device `u64`, inode `u64`, size `u64`,
/// modification time `i64` (nanoseconds since 1970), chunk count `u32` and one `u32` CRC32C
/// per chunk; then the CRC32C of everything before it. Written whole to a temporary file,
/// flushed, and renamed over the old one, so a crash leaves the old index or the new one.
/// A file that is missing, damaged or of another version reads as an empty index: it costs
/// one read of each file at the next sync, never a wrong answer, since every entry is
/// checked against its file before it is used (``ChunkIndex/trustedChunks(_:current:)``).
struct ChunkIndexFile {
    static let rawPath = DataDirectory.reservedDirectory + "/chunk-index"
    private static let temporaryPath = rawPath + ".new"
    private static let magic: [UInt8] = Array("BRCI".utf8)
    private static let version: UInt16 = 1

    let directory: DataDirectory

    /// The stored entries, or an empty index and why when there is no usable file.
    func load() -> (entries: [ReplicatedPath: ChunkIndex.Entry], problem: String?) {
        let bytes: ByteBuffer
        do {
            guard let file = try directory.openForReading(ReplicatedPath(alreadyValidated: Self.rawPath)) else { return ([:], nil) }
            let size = try file.size()
            var buffer = ByteBuffer()
            let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw throws(StorageError) in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw.prefix(size)), at: 0)
            }
            guard read == size else { return ([:], "\(Self.rawPath) shrank while it was read") }
            bytes = buffer
        } catch {
            return ([:], "\(error)")
        }
        guard let entries = Self.decode(bytes) else { return ([:], "\(Self.rawPath) is damaged or of another version; files are read again") }
        return (entries, nil)
    }

    /// Replaces the stored index with `entries`, durably.
    func store(_ entries: [ReplicatedPath: ChunkIndex.Entry]) throws(StorageError) {
        let bytes = Self.encode(entries)
        let file = try directory.openFile(rawPath: Self.temporaryPath, create: true, truncate: true)
        try bytes.withUnsafeReadableBytes { raw throws(StorageError) in try file.write(raw, at: 0) }
        try file.sync()
        try directory.rename(rawPath: Self.temporaryPath, over: ReplicatedPath(alreadyValidated: Self.rawPath), durable: true)
    }

    static func encode(_ entries: [ReplicatedPath: ChunkIndex.Entry]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(UInt32(ChunkIndex.chunkBytes))
        buffer.writeInteger(UInt32(entries.count))
        for (path, entry) in entries.sorted(by: { $0.key.string < $1.key.string }) {
            let utf8 = Array(path.string.utf8)
            buffer.writeInteger(UInt16(utf8.count))
            buffer.writeBytes(utf8)
            buffer.writeInteger(entry.identity.device)
            buffer.writeInteger(entry.identity.inode)
            buffer.writeInteger(UInt64(entry.identity.size))
            buffer.writeInteger(entry.identity.modifiedNanoseconds)
            buffer.writeInteger(UInt32(entry.chunks.count))
            for chunk in entry.chunks { buffer.writeInteger(chunk) }
        }
        let checksum = buffer.withUnsafeReadableBytes { CRC32C.checksum($0) }
        buffer.writeInteger(checksum)
        return buffer
    }

    static func decode(_ bytes: ByteBuffer) -> [ReplicatedPath: ChunkIndex.Entry]? {
        guard bytes.readableBytes >= 18 else { return nil }
        let body = bytes.getSlice(at: bytes.readerIndex, length: bytes.readableBytes - 4)!
        guard body.withUnsafeReadableBytes({ CRC32C.checksum($0) }) == bytes.getInteger(at: bytes.writerIndex - 4, as: UInt32.self) else { return nil }
        var reader = body
        guard reader.readBytes(length: 4) == magic, reader.readInteger(as: UInt16.self) == version,
            reader.readInteger(as: UInt32.self) == UInt32(ChunkIndex.chunkBytes), let count = reader.readInteger(as: UInt32.self)
        else { return nil }
        var entries: [ReplicatedPath: ChunkIndex.Entry] = [:]
        for _ in 0..<count {
            guard let length = reader.readInteger(as: UInt16.self), let name = reader.readString(length: Int(length)),
                let path = try? ReplicatedPath(name),
                let device = reader.readInteger(as: UInt64.self), let inode = reader.readInteger(as: UInt64.self),
                let size = reader.readInteger(as: UInt64.self), size <= UInt64(Int64.max),
                let modified = reader.readInteger(as: Int64.self), let chunkCount = reader.readInteger(as: UInt32.self),
                Int(chunkCount) <= reader.readableBytes / 4
            else { return nil }
            var chunks: [UInt32] = []
            chunks.reserveCapacity(Int(chunkCount))
            for _ in 0..<chunkCount { chunks.append(reader.readInteger(as: UInt32.self)!) }
            let identity = ChunkIndex.Identity(device: device, inode: inode, size: Int(size), modifiedNanoseconds: modified)
            entries[path] = ChunkIndex.Entry(identity: identity, chunks: chunks)
        }
        return reader.readableBytes == 0 ? entries : nil
    }
}
