/// How a full sync compares and checks files chunk by chunk (Docs/Protocol.md, "Full-sync
/// messages").
extension FullSyncReceiver {
    /// The longest prefix of the local file that matches `entry`, compared chunk by chunk from
    /// the start, and the CRC32C of its last partial chunk when it ends inside one.
    static func matchingPrefix(
        of entry: SyncManifestEntry, localSize: Int, reader: inout ChunkReader
    ) throws(StorageError) -> (keep: Int, prefixChecksum: UInt32) {
        for (chunk, expected) in entry.chunkChecksums.enumerated() {
            let start = chunk * ChunkIndex.chunkBytes
            let length = entry.length(ofChunk: chunk)
            if localSize >= start + length {
                if try reader.checksum(ofChunk: chunk, length: length) != expected { return (start, 0) }
            } else if localSize > start {
                // The local copy ends inside this chunk: the leader checks the part it holds.
                return (localSize, try reader.checksum(ofChunk: chunk, length: localSize - start))
            } else {
                return (start, 0)
            }
        }
        return (Int(entry.size), 0)
    }

    /// Folds `bytes`, which start at `offset` of the file, into the running checksum of their
    /// chunk, and checks every chunk they complete against the manifest.
    static func verify(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, of entry: SyncManifestEntry, running: inout UInt32
    ) throws(ApplyError) {
        var position = offset
        var rest = bytes[...]
        while !rest.isEmpty {
            let chunk = position / ChunkIndex.chunkBytes
            let chunkEnd = chunk * ChunkIndex.chunkBytes + entry.length(ofChunk: chunk)
            let take = min(rest.count, chunkEnd - position)
            running = CRC32C.update(running, with: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            rest = rest.dropFirst(take)
            position += take
            if position == chunkEnd {
                let checksum = CRC32C.finish(running)
                guard checksum == entry.chunkChecksums[chunk] else {
                    throw .inconsistent(
                        "\(entry.path) chunk \(chunk) arrived with CRC32C \(hex(checksum)) but the manifest says \(hex(entry.chunkChecksums[chunk]))"
                    )
                }
                running = CRC32C.start
            }
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
