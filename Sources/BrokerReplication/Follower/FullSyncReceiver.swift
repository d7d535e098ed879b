import LZ4
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives one full sync: manifest, requests, chunks, install.
///
/// The leader sends the manifest of its files as of the cut: path, size and the CRC32C of
/// every 1 MiB chunk. The follower deletes what the leader does not have and, for each file,
/// keeps the longest prefix whose chunks match, comparing chunk by chunk from the start and
/// stopping at the first that differs, so it never reads data it will discard. Its own
/// checksums come from the ``ChunkIndex`` where that still holds, so an unchanged file costs
/// no read at all. It then asks for each file from the end of that prefix: only the tail when
/// its copy is a prefix of the leader's; from the first differing chunk when it diverges,
/// truncating there; nothing but a truncation when its copy is longer; the whole file when
/// nothing matches.
///
/// The bytes are written in place, each chunk checked against its manifest checksum as it
/// completes. A sync that fails halfway leaves files partly updated, which is safe: the
/// follower's position says "full sync needed" until the install is durable, and the next
/// sync keeps whatever already matches.
///
/// Every length from the network is checked before it is trusted: manifest indices, chunk
/// offsets, and chunk sizes (against ``WireLimits/maximumBatchBytes`` before allocating,
/// and against the manifest size before writing).
struct FullSyncReceiver: Sendable {
    /// A requested file being received.
    private struct Incoming: Sendable {
        /// The offset the follower asked from, and the CRC32C of its bytes between that
        /// offset's chunk start and the offset.
        var requestedOffset: UInt64
        var prefixChecksum: UInt32
        /// The next chunk's offset; nil until the first chunk arrives.
        var writtenBytes: UInt64?
        /// The running CRC32C of the current 1 MiB chunk, from the chunk's start.
        var runningChecksum: UInt32 = CRC32C.start
        /// Bytes written since writeback was last started.
        var unsyncedBytes: UInt64 = 0
    }

    /// What the plan does to one local file before anything arrives.
    private enum LocalChange {
        case truncate(ReplicatedPath, to: Int)
        case remove(ReplicatedPath)
    }

    /// Writeback of a file being received starts every this many bytes as it arrives, without
    /// waiting for it: the disk writes are spread over the sync, and the install's one
    /// `syncfs` has little left to flush.
    static let writebackEveryBytes: UInt64 = 8 << 20

    private let directory: DataDirectory
    private let index: ChunkIndex
    private let begin: SyncBegin
    private let limits: WireLimits
    private let durable: Bool
    private var manifest: [SyncManifestEntry] = []
    private var manifestPaths: Set<ReplicatedPath> = []
    /// The requested files by manifest index; nil until ``planRequests(checked:)``.
    private var incoming: [UInt32: Incoming]?
    /// The file chunks are being written to: one at a time, so a leader that interleaves
    /// files cannot make the follower hold a descriptor per file.
    private var current: (index: UInt32, handle: DataFile)?
    private var finished = false
    /// Bytes of the requested files that the follower already held and keeps.
    private(set) var keptBytes: UInt64 = 0

    /// The staging directory of earlier versions, which wrote whole files there first.
    static let stagingDirectory = "sync"

    init(directory: DataDirectory, index: ChunkIndex, begin: SyncBegin, limits: WireLimits, durable: Bool) {
        self.directory = directory
        self.index = index
        self.begin = begin
        self.limits = limits
        self.durable = durable
    }

    /// The LSN the files are a cut at; streaming resumes after it.
    var cutLSN: UInt64 { begin.cutLSN }

    /// Files in the manifest.
    var fileCount: UInt32 { begin.fileCount }

    /// True once all `begin.fileCount` manifest entries have arrived.
    var manifestComplete: Bool { manifest.count == Int(begin.fileCount) }

    /// Adds manifest entries, which must arrive in order and add up to `begin.fileCount`.
    mutating func addManifest(firstIndex: UInt32, entries: [SyncManifestEntry]) throws(ApplyError) {
        guard incoming == nil else { throw .inconsistent("manifest entries after the files were requested") }
        guard Int(firstIndex) == manifest.count else {
            throw .inconsistent("manifest entries start at index \(firstIndex), expected \(manifest.count)")
        }
        guard entries.count <= Int(begin.fileCount) - manifest.count else {
            throw .inconsistent(
                "manifest has more than the \(begin.fileCount) files announced (\(manifest.count + entries.count) so far)"
            )
        }
        for entry in entries {
            guard entry.size <= UInt64(Int64.max) else {
                throw .inconsistent("manifest entry for \(entry.path) has size \(entry.size), beyond any file")
            }
            guard entry.chunkChecksums.count == SyncManifestEntry.chunkCount(forSize: entry.size) else {
                throw .inconsistent("manifest entry for \(entry.path) has \(entry.chunkChecksums.count) chunk checksums for \(entry.size) bytes")
            }
            guard manifestPaths.insert(entry.path).inserted else {
                throw .inconsistent("manifest lists \(entry.path) twice")
            }
            manifest.append(entry)
        }
    }

    /// Deletes local files that are not in the manifest (and directories that become empty),
    /// truncates the files that diverge or are longer than the leader's, and returns what
    /// the follower needs, in manifest order. Call once, after the manifest is complete.
    ///
    /// - Parameter checked: called with the bytes of its own files read to compare them.
    mutating func planRequests(checked: (Int) -> Void = { _ in }) throws(ApplyError) -> [SyncRequest.File] {
        guard manifestComplete else {
            throw .inconsistent("files requested with \(manifest.count) of \(begin.fileCount) manifest entries")
        }
        guard incoming == nil else { throw .inconsistent("files requested twice in one full sync") }
        for entry in manifest {
            // "a" and "a/b" cannot both be files.
            var prefix = Substring(entry.path.string)
            while let slash = prefix.utf8.lastIndex(of: UInt8(ascii: "/")) {
                prefix = prefix[..<slash]
                if manifestPaths.contains(ReplicatedPath(alreadyValidated: String(prefix))) {
                    throw .inconsistent("manifest lists \(prefix) as a file and as a directory of \(entry.path)")
                }
            }
        }
        let (requests, changes, kept) = try ApplyError.catching { () throws(StorageError) in
            // Leftovers of an earlier version's sync that crashed.
            try directory.removeReservedDirectory(Self.stagingDirectory)
            var changes: [LocalChange] = []
            var localSizes: [ReplicatedPath: Int] = [:]
            for file in try directory.listFiles() {
                if manifestPaths.contains(file.path) { localSizes[file.path] = file.size } else { changes.append(.remove(file.path)) }
            }
            var requests: [SyncRequest.File] = []
            var kept: UInt64 = 0
            for (position, entry) in manifest.enumerated() {
                let fileIndex = UInt32(position)
                guard let localSize = localSizes[entry.path], let handle = try directory.openForReading(entry.path) else {
                    // Missing, or not a regular file (a symlink is removed, never followed).
                    changes.append(.remove(entry.path))
                    requests.append(SyncRequest.File(index: fileIndex, offset: 0, prefixChecksum: 0))
                    continue
                }
                var reader = try index.reader(for: entry.path, file: handle)
                let (keep, prefixChecksum) = try Self.matchingPrefix(of: entry, localSize: localSize, reader: &reader)
                checked(reader.bytesRead)
                reader.truncate(toChunks: keep / ChunkIndex.chunkBytes)
                index.record(reader)
                if keep < localSize { changes.append(.truncate(entry.path, to: keep)) }
                if UInt64(keep) < entry.size {
                    kept += UInt64(keep)
                    requests.append(SyncRequest.File(index: fileIndex, offset: UInt64(keep), prefixChecksum: prefixChecksum))
                }
            }
            return (requests, changes, kept)
        }
        try ApplyError.catching { () throws(StorageError) in
            // The index must not describe a file as it was before the sync changes it: forget
            // those files, durably, before touching them.
            for change in changes {
                switch change {
                case .remove(let path), .truncate(let path, _): index.forget(path)
                }
            }
            for request in requests { index.forget(manifest[Int(request.index)].path) }
            index.keepOnly(manifestPaths)
            try ChunkIndexFile(directory: directory).store(index.snapshot)
            for change in changes {
                switch change {
                case .remove(let path):
                    try directory.delete(path, durable: false)  // finish() flushes
                case .truncate(let path, let size):
                    try directory.openFile(path, create: false).truncate(to: size)
                }
            }
        }
        incoming = Dictionary(uniqueKeysWithValues: requests.map {
            ($0.index, Incoming(requestedOffset: $0.offset, prefixChecksum: $0.prefixChecksum))
        })
        keptBytes = kept
        return requests
    }

    /// Writes one chunk of a requested file in place and checks each 1 MiB chunk it completes.
    ///
    /// A file's first chunk starts at the offset requested, or at that offset's chunk start
    /// when the leader found the follower's partial chunk different; later chunks follow in
    /// order. The declared uncompressed size is checked against the limit before anything is
    /// allocated, and the chunk must not run past the file's manifest size.
    mutating func receive(_ chunk: SyncChunk) throws(ApplyError) {
        guard !finished, var file = incoming?[chunk.fileIndex] else {
            throw .inconsistent("chunk for file \(chunk.fileIndex), which was not requested")
        }
        let entry = manifest[Int(chunk.fileIndex)]
        if let written = file.writtenBytes {
            guard chunk.offset == written else {
                throw .inconsistent("chunk for \(entry.path) at offset \(chunk.offset), expected offset \(written)")
            }
        } else {
            let chunkStart = file.requestedOffset - file.requestedOffset % UInt64(ChunkIndex.chunkBytes)
            if chunk.offset == file.requestedOffset {
                // The leader agreed with the partial chunk the follower holds: continue its checksum.
                file.runningChecksum = chunkStart == chunk.offset ? CRC32C.start : CRC32C.resume(file.prefixChecksum)
            } else if chunk.offset == chunkStart {
                file.runningChecksum = CRC32C.start
            } else {
                throw .inconsistent("first chunk for \(entry.path) at offset \(chunk.offset), expected offset \(file.requestedOffset) or \(chunkStart)")
            }
        }
        let size = Int(chunk.uncompressedBytes)
        guard size <= limits.maximumBatchBytes else {
            throw .inconsistent(
                "chunk for \(entry.path) declares \(size) bytes, above the limit of \(limits.maximumBatchBytes) bytes"
            )
        }
        guard size > 0, UInt64(size) <= entry.size - chunk.offset else {
            throw .inconsistent(
                "chunk for \(entry.path) at offset \(chunk.offset) with \(size) bytes runs past its size of \(entry.size) bytes"
            )
        }

        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { bytes.deallocate() }
        let decompressed = chunk.compressed.withUnsafeReadableBytes { compressed in
            Result { () throws(LZ4Error) in try LZ4Block.decompress(compressed, into: bytes) }
        }
        if case .failure(let error) = decompressed {
            throw .inconsistent("chunk for \(entry.path) at offset \(chunk.offset): \(error)")
        }
        try Self.verify(UnsafeRawBufferPointer(bytes), at: Int(chunk.offset), of: entry, running: &file.runningChecksum)

        let handle: DataFile
        if let current, current.index == chunk.fileIndex {
            handle = current.handle
        } else {
            current = nil
            handle = try ApplyError.catching { () throws(StorageError) in try directory.openFile(entry.path, create: true) }
            current = (chunk.fileIndex, handle)
        }
        try ApplyError.catching { () throws(StorageError) in try handle.write(UnsafeRawBufferPointer(bytes), at: Int(chunk.offset)) }
        let written = chunk.offset + UInt64(size)
        file.writtenBytes = written
        file.unsyncedBytes += UInt64(size)
        let complete = written == entry.size
        if durable, complete || file.unsyncedBytes >= Self.writebackEveryBytes {
            // Writeback starts now and runs while more arrives; the install's one syncfs
            // makes it durable and finds little left to write.
            let start = Int(written - file.unsyncedBytes)
            try ApplyError.catching { () throws(StorageError) in try handle.startWriteback(from: start, length: Int(file.unsyncedBytes)) }
            file.unsyncedBytes = 0
        }
        incoming![chunk.fileIndex] = file
        if complete { current = nil }
    }

    /// Checks every requested file arrived whole, removes leftovers of the stream before the
    /// sync, flushes the file system once, and records the files' chunks in the index.
    ///
    /// A requested file of size 0 gets no chunks: it is created empty here. Pending replace
    /// temporaries in `.brpl/replace` are removed: they belong to the stream before the sync,
    /// and a stream that resumes after the cut must not continue one.
    mutating func finish() throws(ApplyError) {
        guard let incoming, !finished else {
            throw .inconsistent(finished ? "full sync finished twice" : "full sync ended before the files were requested")
        }
        current = nil
        for index in incoming.keys.sorted() {
            let entry = manifest[Int(index)]
            let file = incoming[index]!
            let written = file.writtenBytes ?? file.requestedOffset
            guard written == entry.size else {
                throw .inconsistent("full sync ended with \(written) of \(entry.size) bytes of \(entry.path)")
            }
            if entry.size == 0 {
                try ApplyError.catching { () throws(StorageError) in
                    let handle = try directory.openFile(entry.path, create: true)
                    try handle.truncate(to: 0)
                }
            }
        }
        try ApplyError.catching { () throws(StorageError) in
            try directory.removeReservedDirectory("replace")
            // One flush for the whole cut before it is acked: the writes not flushed yet, the
            // directories created, the deletions, and the files kept as identical, which may hold
            // writes the page cache never flushed (an earlier stream's, whose commit failed).
            if durable { try directory.syncFileSystem() }
            for entry in manifest {
                guard let handle = try directory.openForReading(entry.path) else { continue }
                try index.record(entry.chunkChecksums.prefix(Int(entry.size) / ChunkIndex.chunkBytes), for: entry.path, file: handle)
            }
            try ChunkIndexFile(directory: directory).store(index.snapshot)
        }
        finished = true
    }
}
