import Crypto
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the follower could not apply what it received. Either way the connection closes and the
/// follower resyncs; nothing is acked that was not applied.
@_spi(Benchmarks) public enum ApplyError: Error, CustomStringConvertible, Sendable {
    /// The disk refused (full, read-only, I/O error), or a path crossed a symlink.
    case storage(StorageError)
    /// The stream does not fit the local files (needs a resync).
    case inconsistent(String)

    @_spi(Benchmarks) public var description: String {
        switch self {
        case .storage(let error): "follower could not write its data directory: \(error)"
        case .inconsistent(let reason): "the replication stream does not fit the follower's files: \(reason)"
        }
    }
}

/// Applies records to the data directory in LSN order.
///
/// - An append writes at the record's offset, the file's size on the leader before the
///   append. A smaller local file means records are missing (a gap, refused); a larger one
///   means this is a replay after a crash before the ack, so the file is cut back to the
///   offset and the same bytes are written again. Replaying records therefore leaves the
///   same files.
/// - Contiguous appends to one file within one ``apply(_:)`` call are collected and written
///   with one `pwrite` per file (a broker's batch of 400 small records to 20 segment files
///   costs 20 system calls, not 400).
/// - A replace collects its chunks in `.brpl/replace/<SHA-256 of the path>` and renames that
///   over the path at the last chunk. The temporary file's name depends only on the path, so
///   a replace interrupted by a crash resumes from its last acked chunk. When durable, the
///   temporary file is fsynced before the rename, so a crash leaves the old or the new
///   contents, never a mix.
/// - A delete removes the file, and the directories it leaves empty.
///
/// Nothing here flushes the disk for appends, renames and deletes: the group commit makes
/// everything applied durable with one ``DataDirectory/syncFileSystem()``.
///
/// Every path is opened through ``DataDirectory``, so a symlink anywhere in it is refused.
///
/// Used strictly sequentially by one follower session: `apply` and `closeAll` are never
/// called concurrently (each call may run on a different thread, one after the other). That
/// is why it is `@unchecked Sendable` and has no lock.
@_spi(Benchmarks) public final class RecordApplier: @unchecked Sendable {
    /// An open file, its size on disk, and the appends collected for it but not yet written.
    private struct OpenFile {
        var handle: DataFile
        /// Bytes on disk (what the pending run has not reached yet).
        var size: Int
        /// Contiguous appends starting at `size`, written by ``RecordApplier/writePending(_:)``.
        var pending: ByteBuffer?
        /// When an append last used the file, on the applier's own clock.
        var lastUsed: UInt64 = 0

        /// The size once the pending appends are written: where the next append must start.
        var sizeAfterPending: Int { size + (pending?.readableBytes ?? 0) }
    }

    /// The most files kept open for appends; beyond it the least recently used are closed (and
    /// reopen on their next append).
    let maximumOpenFiles: Int

    private let directory: DataDirectory
    private let durable: Bool
    private let allocator = ByteBufferAllocator()
    /// Files being appended to, by path.
    private var appending: [ReplicatedPath: OpenFile] = [:]
    /// Counts appends, to find the least recently used open files.
    private var clock: UInt64 = 0
    /// Paths in `appending` with pending appends, in the order they got them.
    private var pendingPaths: [ReplicatedPath] = []
    /// Temporary files of replaces still waiting for their last chunk, by target path.
    private var replacing: [ReplicatedPath: OpenFile] = [:]

    /// Write system calls made for appends so far (tests check that appends coalesce).
    private(set) var appendWrites = 0

    /// - Parameters:
    ///   - directory: The follower's data directory.
    ///   - durable: Whether a replace's temporary file is fsynced before its rename.
    ///   - maximumOpenFiles: The most files kept open for appends.
    @_spi(Benchmarks) public init(directory: DataDirectory, durable: Bool, maximumOpenFiles: Int = 256) {
        precondition(maximumOpenFiles >= 1, "at least one file may be open")
        self.directory = directory
        self.durable = durable
        self.maximumOpenFiles = maximumOpenFiles
    }

    /// Files open for appends now.
    var openFileCount: Int { appending.count }

    /// Whether `path` is open for appends now.
    func isOpen(_ path: ReplicatedPath) -> Bool { appending[path] != nil }

    /// Applies `records` in order and writes them all before returning. On an error, the
    /// records before the failing one may stay applied; the session must end (and resync)
    /// since nothing more can be acked.
    @_spi(Benchmarks) public func apply(_ records: [ReplicationRecord]) throws(ApplyError) {
        do {
            for record in records {
                switch record {
                case .append(let path, let offset, let bytes):
                    try append(to: path, at: offset, bytes)
                case .replace(let path, let offset, let chunk, let flags):
                    try replace(path, at: offset, chunk, flags: flags)
                case .delete(let path):
                    try delete(path)
                }
            }
            try writeAllPending()
        } catch {
            // Whatever was cached may no longer match the disk.
            closeAll()
            throw error
        }
    }

    /// Drops cached handles (after a full sync replaced files, or when the session ends).
    @_spi(Benchmarks) public func closeAll() {
        appending = [:]
        pendingPaths = []
        replacing = [:]
    }

    // MARK: Records

    private func append(to path: ReplicatedPath, at offset: UInt64, _ bytes: ByteBuffer) throws(ApplyError) {
        let start = try Self.fileOffset(offset, count: bytes.readableBytes, path: path)
        clock += 1
        if let index = appending.index(forKey: path), appending.values[index].pending != nil,
           start == appending.values[index].sizeAfterPending {
            // The common case: the next record of a run. Grow it in place; write nothing yet.
            Self.extend(&appending.values[index].pending!, with: bytes, allocator: allocator)
            appending.values[index].lastUsed = clock
            return
        }
        try writePending(path)
        var file: OpenFile
        if let cached = appending[path] {
            file = cached
        } else {
            file = try ApplyError.catching { () throws(StorageError) in try open(path) }
        }
        guard start <= file.size else {
            throw .inconsistent("append to \(path) at offset \(offset) but the file has \(file.size) bytes: records are missing")
        }
        if start < file.size {
            try ApplyError.catching { () throws(StorageError) in try file.handle.truncate(to: start) }
            file.size = start
        }
        file.pending = bytes
        file.lastUsed = clock
        if appending[path] == nil && appending.count >= maximumOpenFiles {
            try closeLeastRecentlyUsed()
        }
        appending[path] = file
        pendingPaths.append(path)
    }

    private func replace(
        _ path: ReplicatedPath,
        at offset: UInt64,
        _ chunk: ByteBuffer,
        flags: ReplicationRecord.ReplaceFlags
    ) throws(ApplyError) {
        let start = try Self.fileOffset(offset, count: chunk.readableBytes, path: path)
        let temporaryPath = Self.temporaryPath(for: path)
        var temporary: OpenFile
        if flags.contains(.firstChunk) {
            // Drops any half-received replacement of the same path.
            replacing[path] = nil
            let handle = try ApplyError.catching { () throws(StorageError) in
                try directory.openFile(rawPath: temporaryPath, create: true, truncate: true)
            }
            temporary = OpenFile(handle: handle, size: 0)
        } else if let cached = replacing[path] {
            temporary = cached
        } else {
            do {
                let handle = try directory.openFile(rawPath: temporaryPath, create: false, truncate: false)
                temporary = OpenFile(handle: handle, size: try handle.size())
            } catch where error.errno == ENOENT {
                throw .inconsistent("replace chunk for \(path) at offset \(offset) without its first chunk")
            } catch {
                throw .storage(error)
            }
        }
        guard start <= temporary.size else {
            throw .inconsistent(
                "replace chunk for \(path) at offset \(offset) but \(temporary.size) bytes have arrived: chunks are missing"
            )
        }
        try ApplyError.catching { () throws(StorageError) in
            if start < temporary.size { try temporary.handle.truncate(to: start) }
            try Self.write(chunk, to: temporary.handle, at: start)
        }
        temporary.size = start + chunk.readableBytes

        guard flags.contains(.lastChunk) else {
            replacing[path] = temporary
            return
        }
        replacing[path] = nil
        // Appends to the old file come first, in LSN order; the rename then drops them with it.
        try writePending(path)
        appending[path] = nil
        try ApplyError.catching { () throws(StorageError) in
            if durable { try temporary.handle.sync() }
            // The rename itself, and directories created for it, are made durable by the
            // group commit's file-system flush.
            try directory.rename(rawPath: temporaryPath, over: path, durable: false)
        }
    }

    private func delete(_ path: ReplicatedPath) throws(ApplyError) {
        try writePending(path)
        appending[path] = nil
        try ApplyError.catching { () throws(StorageError) in try directory.delete(path, durable: false) }
    }

    // MARK: Pending appends

    /// Writes the appends collected for `path`, if any, with one `pwrite`.
    private func writePending(_ path: ReplicatedPath) throws(ApplyError) {
        guard var file = appending[path], let run = file.pending else { return }
        try ApplyError.catching { () throws(StorageError) in try Self.write(run, to: file.handle, at: file.size) }
        appendWrites += 1
        file.size += run.readableBytes
        file.pending = nil
        appending[path] = file
    }

    /// Closes the least recently used files, down to seven eighths of the bound, so that the
    /// next openings do not each pay for a search. Their pending appends are written first.
    private func closeLeastRecentlyUsed() throws(ApplyError) {
        let target = maximumOpenFiles - 1 - maximumOpenFiles / 8
        let oldestFirst = appending.map { (path: $0.key, lastUsed: $0.value.lastUsed) }.sorted { $0.lastUsed < $1.lastUsed }
        for (path, _) in oldestFirst.prefix(appending.count - target) {
            try writePending(path)
            appending[path] = nil
        }
    }

    private func writeAllPending() throws(ApplyError) {
        for path in pendingPaths { try writePending(path) }
        pendingPaths.removeAll(keepingCapacity: true)
    }

    /// Adds `bytes` to a run. The run starts as a slice of the received batch (no copy); the
    /// second record copies it into a buffer of its own, sized for a batch's worth.
    private static func extend(_ run: inout ByteBuffer, with bytes: ByteBuffer, allocator: ByteBufferAllocator) {
        if run.capacity == run.writerIndex || run.readerIndex > 0 {
            var owned = allocator.buffer(capacity: max(4 * (run.readableBytes + bytes.readableBytes), 16 << 10))
            owned.writeImmutableBuffer(run)
            run = owned
        }
        run.writeImmutableBuffer(bytes)
    }

    // MARK: Helpers

    /// Opens a file for appending, creating it (and its directories) when missing.
    private func open(_ path: ReplicatedPath) throws(StorageError) -> OpenFile {
        let handle = try directory.openFile(path, create: true)
        return OpenFile(handle: handle, size: try handle.size())
    }

    /// The temporary file of a replace of `path`: fixed length, whatever the path's length.
    static func temporaryPath(for path: ReplicatedPath) -> String {
        let digest = SHA256.hash(data: Array(path.string.utf8))
        var hex = ""
        for byte in digest { hex += String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16) }
        return DataDirectory.reservedDirectory + "/replace/" + hex
    }

    /// The record's offset as an `Int`, refusing one whose data would end beyond any file.
    private static func fileOffset(_ offset: UInt64, count: Int, path: ReplicatedPath) throws(ApplyError) -> Int {
        guard offset <= UInt64(Int64.max) - UInt64(count) else {
            throw .inconsistent("record for \(path) at offset \(offset) with \(count) bytes ends beyond any file size")
        }
        return Int(offset)
    }

    private static func write(_ buffer: ByteBuffer, to handle: DataFile, at offset: Int) throws(StorageError) {
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(StorageError) in try handle.write(bytes, at: offset) }
        }
        try result.get()
    }
}

extension ApplyError {
    /// Runs `body`, reporting a storage error as an ``ApplyError``.
    static func catching<Value>(_ body: () throws(StorageError) -> Value) throws(ApplyError) -> Value {
        do {
            return try body()
        } catch {
            throw .storage(error)
        }
    }
}
