import LZ4
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives one full sync: manifest, requests, chunks, install.
///
/// The leader sends the manifest of its files as of the cut (path, size, CRC32C); the
/// follower deletes what the leader does not have and requests what differs. Requested
/// files are staged in `.brpl/sync/<index>`, checksummed while they arrive, and only
/// renamed into place once every one of them is complete and matches its manifest entry,
/// so a sync that fails halfway installs nothing (though extra files are already gone:
/// the follower's position says "full sync needed" until the install is durable).
///
/// Every length from the network is checked before it is trusted: manifest indices, chunk
/// offsets, and chunk sizes (against ``WireLimits/maximumBatchBytes`` before allocating,
/// and against the manifest size before writing).
struct FullSyncReceiver: Sendable {
    /// A requested file being staged.
    private struct StagedFile: Sendable {
        /// Bytes written so far; the next chunk's offset.
        var writtenBytes: UInt64 = 0
        /// The running CRC32C of the written bytes.
        var runningChecksum: UInt32 = CRC32C.start
        /// Bytes made durable so far.
        var syncedBytes: UInt64 = 0
    }

    /// A staged file is flushed every this many bytes as it arrives: the flushing is spread
    /// over the sync, and no single flush of a large file keeps the follower from reading
    /// (and from making progress) for long.
    static let flushEveryBytes: UInt64 = 8 << 20

    private let directory: DataDirectory
    private let begin: SyncBegin
    private let limits: WireLimits
    private let durable: Bool
    private var manifest: [SyncManifestEntry] = []
    private var manifestPaths: Set<ReplicatedPath> = []
    /// The requested files by manifest index; nil until ``planRequests()``.
    private var staged: [UInt32: StagedFile]?
    /// The staging file chunks are being written to: one at a time, so a leader that
    /// interleaves files cannot make the follower hold a descriptor per file.
    private var current: (index: UInt32, handle: DataFile)?
    private var finished = false

    /// The staging directory, below the reserved directory.
    static let stagingDirectory = "sync"

    init(directory: DataDirectory, begin: SyncBegin, limits: WireLimits, durable: Bool) {
        self.directory = directory
        self.begin = begin
        self.limits = limits
        self.durable = durable
    }

    /// The LSN the files are a cut at; streaming resumes after it.
    var cutLSN: UInt64 { begin.cutLSN }

    /// True once all `begin.fileCount` manifest entries have arrived.
    var manifestComplete: Bool { manifest.count == Int(begin.fileCount) }

    /// Adds manifest entries, which must arrive in order and add up to `begin.fileCount`.
    mutating func addManifest(firstIndex: UInt32, entries: [SyncManifestEntry]) throws(ApplyError) {
        guard staged == nil else { throw .inconsistent("manifest entries after the files were requested") }
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
            guard manifestPaths.insert(entry.path).inserted else {
                throw .inconsistent("manifest lists \(entry.path) twice")
            }
            manifest.append(entry)
        }
    }

    /// Deletes local files that are not in the manifest (and directories that become empty)
    /// and returns the manifest indices the follower needs, in ascending order: missing
    /// locally, different size, or different CRC32C. Call once, after the manifest is complete.
    ///
    /// - Parameter checked: called with the bytes of each 1 MiB block checksummed.
    mutating func planRequests(checked: (Int) -> Void = { _ in }) throws(ApplyError) -> [UInt32] {
        guard manifestComplete else {
            throw .inconsistent("files requested with \(manifest.count) of \(begin.fileCount) manifest entries")
        }
        guard staged == nil else { throw .inconsistent("files requested twice in one full sync") }
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
        let requested = try ApplyError.catching { () throws(StorageError) -> [UInt32] in
            // Leftovers of an earlier sync that crashed; no temporary file survives a full sync.
            try directory.removeReservedDirectory(Self.stagingDirectory)
            var localSizes: [ReplicatedPath: Int] = [:]
            for file in try directory.listFiles() {
                if manifestPaths.contains(file.path) {
                    localSizes[file.path] = file.size
                } else {
                    try directory.delete(file.path, durable: false)  // finish() flushes
                }
            }
            var requested: [UInt32] = []
            for (index, entry) in manifest.enumerated() {
                if let size = localSizes[entry.path], UInt64(size) == entry.size,
                    let handle = try directory.openForReading(entry.path),
                    try Self.checksum(handle, length: size, checked: checked) == entry.checksum
                {
                    continue
                }
                requested.append(UInt32(index))
            }
            return requested
        }
        staged = Dictionary(uniqueKeysWithValues: requested.map { ($0, StagedFile()) })
        return requested
    }

    private static func checksum(_ handle: DataFile, length: Int, checked: (Int) -> Void) throws(StorageError) -> UInt32 {
        var reported = 0
        return try handle.checksum(length: length) { done in
            checked(done - reported)
            reported = done
        }
    }

    /// Writes one chunk into `.brpl/sync/<index>`.
    ///
    /// Chunks of a file arrive in order, so the offset must equal the bytes already written
    /// for that index; the index must be one that was requested; the declared uncompressed
    /// size is checked against the limit before anything is allocated, and the chunk must
    /// not run past the file's manifest size.
    mutating func receive(_ chunk: SyncChunk) throws(ApplyError) {
        guard !finished, var file = staged?[chunk.fileIndex] else {
            throw .inconsistent("chunk for file \(chunk.fileIndex), which was not requested")
        }
        let entry = manifest[Int(chunk.fileIndex)]
        guard chunk.offset == file.writtenBytes else {
            throw .inconsistent(
                "chunk for \(entry.path) at offset \(chunk.offset), expected offset \(file.writtenBytes)"
            )
        }
        let size = Int(chunk.uncompressedBytes)
        guard size <= limits.maximumBatchBytes else {
            throw .inconsistent(
                "chunk for \(entry.path) declares \(size) bytes, above the limit of \(limits.maximumBatchBytes) bytes"
            )
        }
        guard UInt64(size) <= entry.size - file.writtenBytes else {
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

        let handle: DataFile
        if let current, current.index == chunk.fileIndex {
            handle = current.handle
        } else {
            current = nil
            let path = Self.stagingPath(chunk.fileIndex)
            let isFirst = file.writtenBytes == 0
            handle = try ApplyError.catching { () throws(StorageError) in
                try directory.openFile(rawPath: path, create: isFirst, truncate: isFirst)
            }
            current = (chunk.fileIndex, handle)
        }
        let offset = Int(chunk.offset)
        try ApplyError.catching { () throws(StorageError) in try handle.write(UnsafeRawBufferPointer(bytes), at: offset) }
        file.writtenBytes += UInt64(size)
        file.runningChecksum = CRC32C.update(file.runningChecksum, with: UnsafeRawBufferPointer(bytes))
        let complete = file.writtenBytes == entry.size
        if durable, complete || file.writtenBytes - file.syncedBytes >= Self.flushEveryBytes {
            try ApplyError.catching { () throws(StorageError) in try handle.sync() }
            file.syncedBytes = file.writtenBytes
        }
        staged![chunk.fileIndex] = file
        if complete { current = nil }
    }

    /// Checks every requested file has its manifest size and CRC32C, renames each over its
    /// path, removes `.brpl/sync`, and flushes the file system.
    ///
    /// A requested file of size 0 gets no chunks: it is created empty here. Files were
    /// flushed as they arrived (every 8 MiB and when complete). Nothing is renamed unless
    /// every file checks out. Pending replace temporaries in `.brpl/replace` are removed too: they belong to the stream
    /// before the sync, and a stream that resumes after the cut must not continue one.
    mutating func finish() throws(ApplyError) {
        guard let staged, !finished else {
            throw .inconsistent(finished ? "full sync finished twice" : "full sync ended before the files were requested")
        }
        current = nil
        let indices = staged.keys.sorted()
        for index in indices {
            let entry = manifest[Int(index)]
            let file = staged[index]!
            guard file.writtenBytes == entry.size else {
                throw .inconsistent("full sync ended with \(file.writtenBytes) of \(entry.size) bytes of \(entry.path)")
            }
            let checksum = CRC32C.finish(file.runningChecksum)
            guard checksum == entry.checksum else {
                throw .inconsistent(
                    "\(entry.path) arrived with CRC32C \(hex(checksum)) but the manifest says \(hex(entry.checksum))"
                )
            }
            if file.writtenBytes == 0 {
                try ApplyError.catching { () throws(StorageError) in
                    let handle = try directory.openFile(rawPath: Self.stagingPath(index), create: true, truncate: true)
                    if durable { try handle.sync() }
                }
            }
        }
        try ApplyError.catching { () throws(StorageError) in
            for index in indices {
                try directory.rename(rawPath: Self.stagingPath(index), over: manifest[Int(index)].path, durable: false)
            }
            try directory.removeReservedDirectory(Self.stagingDirectory)
            try directory.removeReservedDirectory("replace")
            // One flush for the whole cut before it is acked: the renames, the directories they
            // created, the deletions, and the files kept as identical, which may hold writes
            // the page cache never flushed (an earlier stream's, whose commit failed).
            if durable { try directory.syncFileSystem() }
        }
        finished = true
    }

    private static func stagingPath(_ index: UInt32) -> String {
        DataDirectory.reservedDirectory + "/" + stagingDirectory + "/\(index)"
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

extension DataDirectory {
    /// Removes `.brpl/<name>` and the files in it; a missing directory is fine.
    ///
    /// Opened component by component with `O_NOFOLLOW`, like every other path, so a symlink
    /// planted there is refused rather than followed.
    fileprivate func removeReservedDirectory(_ name: String) throws(StorageError) {
        let operation = "remove \(Self.reservedDirectory)/\(name)"
        let root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw StorageError(operation: operation, errno: errno) }
        defer { close(root) }
        let reserved = openat(root, Self.reservedDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if reserved < 0 && errno == ENOENT { return }
        guard reserved >= 0 else { throw StorageError(operation: operation, errno: errno) }
        defer { close(reserved) }
        let target = openat(reserved, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if target < 0 && errno == ENOENT { return }
        guard target >= 0 else { throw StorageError(operation: operation, errno: errno) }
        guard let listing = fdopendir(target) else {
            let error = errno
            close(target)
            throw StorageError(operation: operation, errno: error)
        }
        defer { closedir(listing) }
        // Collect first: removing entries while reading the directory may skip some. Names
        // stay raw bytes (NUL-terminated), whatever their encoding.
        var names: [[CChar]] = []
        while let entry = readdir(listing) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } + [0]
            }
            if entryName != [46, 0] && entryName != [46, 46, 0] { names.append(entryName) }
        }
        for entryName in names where unlinkat(dirfd(listing), entryName, 0) != 0 && errno != ENOENT {
            let shown = String(decoding: entryName.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw StorageError(operation: operation + ": remove \(shown)", errno: errno)
        }
        if unlinkat(reserved, name, AT_REMOVEDIR) != 0 && errno != ENOENT {
            throw StorageError(operation: operation, errno: errno)
        }
    }
}
