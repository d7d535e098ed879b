import NIOCore

// The full-sync messages (Docs/Protocol.md, "Full-sync messages").

/// Leader to follower: a full sync of the files as of `cutLSN` starts; `fileCount`
/// manifest entries follow.
struct SyncBegin: Hashable, Sendable {
    var cutLSN: UInt64
    var fileCount: UInt32
}

/// One file of the full-sync manifest: its path and size as of the cut, and the CRC32C of
/// each of its chunks of ``ChunkIndex/chunkBytes`` (the last one may be shorter).
struct SyncManifestEntry: Hashable, Sendable {
    var path: ReplicatedPath
    var size: UInt64
    var chunkChecksums: [UInt32]

    /// The chunks a file of `size` bytes has: one per started chunk.
    static func chunkCount(forSize size: UInt64) -> Int {
        Int((size + UInt64(ChunkIndex.chunkBytes) - 1) / UInt64(ChunkIndex.chunkBytes))
    }

    /// Bytes of chunk `index` (the last chunk may be shorter).
    func length(ofChunk index: Int) -> Int {
        min(ChunkIndex.chunkBytes, Int(size) - index * ChunkIndex.chunkBytes)
    }
}

/// Follower to leader: the files the follower needs, each from the offset it lacks.
struct SyncRequest: Hashable, Sendable {
    /// One file the follower needs from `offset` on.
    struct File: Hashable, Sendable {
        var index: UInt32
        /// Where the bytes the follower needs start. When it is not a chunk boundary, the
        /// follower holds the bytes between the chunk's start and `offset` with
        /// `prefixChecksum` as their CRC32C; the leader checks them and, if they differ from
        /// its own, sends from the chunk's start instead.
        var offset: UInt64
        var prefixChecksum: UInt32
    }

    /// The most files one request frame carries (fits a control frame).
    static let maximumFiles = 250
    var files: [File]
    /// True on the request frame that ends the follower's list.
    var isLast: Bool
}

/// Follower to leader, at least every ``interval`` while a full sync runs: running totals of
/// the bytes of its own files it has checksummed and of the leader's it has written.
struct SyncProgressReport: Hashable, Sendable {
    static let interval: Duration = .milliseconds(100)
    var bytesChecked: UInt64
    var bytesReceived: UInt64
}

/// Leader to follower: bytes of one requested file at `offset`, LZ4-compressed.
struct SyncChunk: Hashable, Sendable {
    /// Bytes before the compressed payload: file index 4, offset 8, size 4, codec 1.
    static let headerBytes = 17
    var fileIndex: UInt32
    var offset: UInt64
    var uncompressedBytes: UInt32
    var compressed: ByteBuffer
}
