import NIOCore

// The full-sync messages (Docs/Protocol.md, "Full-sync messages").

/// Leader to follower: a full sync of the files as of `cutLSN` starts; `fileCount`
/// manifest entries follow.
struct SyncBegin: Hashable, Sendable {
    var cutLSN: UInt64
    var fileCount: UInt32
}

/// One file of the full-sync manifest: its path, size and CRC32C as of the cut.
struct SyncManifestEntry: Hashable, Sendable {
    var path: ReplicatedPath
    var size: UInt64
    var checksum: UInt32
}

/// Follower to leader: the manifest indices of the files the follower needs.
struct SyncRequest: Hashable, Sendable {
    /// The most indices one request frame carries (fits a control frame).
    static let maximumIndices = 1000
    var fileIndices: [UInt32]
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
