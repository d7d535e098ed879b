import NIOCore

// The full-sync messages (Docs/Protocol.md, "Full-sync messages").

/// Leader to follower: a full sync of the files as of `cutLSN` starts; `fileCount`
/// manifest entries follow.
package struct SyncBegin: Hashable, Sendable {
    package var cutLSN: UInt64
    package var fileCount: UInt32
}

/// One file of the full-sync manifest: its path, size and CRC32C as of the cut.
package struct SyncManifestEntry: Hashable, Sendable {
    package var path: ReplicatedPath
    package var size: UInt64
    package var checksum: UInt32
}

/// Follower to leader: the manifest indices of the files the follower needs.
package struct SyncRequest: Hashable, Sendable {
    /// The most indices one request frame carries (fits a control frame).
    package static let maximumIndices = 1000
    package var fileIndices: [UInt32]
    /// True on the request frame that ends the follower's list.
    package var isLast: Bool
}

/// Follower to leader, at least every ``interval`` while a full sync runs: running totals of
/// the bytes of its own files it has checksummed and of the leader's it has written.
package struct SyncProgressReport: Hashable, Sendable {
    package static let interval: Duration = .milliseconds(100)
    package var bytesChecked: UInt64
    package var bytesReceived: UInt64
}

/// Leader to follower: bytes of one requested file at `offset`, LZ4-compressed.
package struct SyncChunk: Hashable, Sendable {
    /// Bytes before the compressed payload: file index 4, offset 8, size 4, codec 1.
    package static let headerBytes = 17
    package var fileIndex: UInt32
    package var offset: UInt64
    package var uncompressedBytes: UInt32
    package var compressed: ByteBuffer
}
