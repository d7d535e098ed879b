import Crypto
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the follower could not apply what it received. Either way the connection closes and the
/// follower resyncs; nothing is acked that was not applied.
package enum ApplyError: Error, CustomStringConvertible, Sendable {
    /// The disk refused (full, read-only, I/O error), or a path crossed a symlink.
    case storage(StorageError)
    /// The stream does not fit the local files (needs a resync).
    case inconsistent(String)

    package var description: String {
        switch self {
        case .storage(let error): "follower could not write its data directory: \(error)"
        case .inconsistent(let reason): "the replication stream does not fit the follower's files: \(reason)"
        }
    }
}

/// What must be made durable for everything applied so far.
package struct DirtySet: Sendable {
    /// Files written since the last ``RecordApplier/takeDirty()``, each handle once.
    package var files: [FileHandle]
    /// Paths whose *parent directory* needs an fsync (new files and the directories created for them).
    package var directories: [ReplicatedPath]

    package init(files: [FileHandle] = [], directories: [ReplicatedPath] = []) {
        self.files = files
        self.directories = directories
    }

    package var isEmpty: Bool { files.isEmpty && directories.isEmpty }
}

/// Applies records to the data directory in LSN order.
///
/// - An append writes at the record's offset, the file's size on the leader before the
///   append. A smaller local file means records are missing (a gap, refused); a larger one
///   means this is a replay after a crash before the ack, so the file is cut back to the
///   offset and the same bytes are written again. Replaying records therefore leaves the
///   same files.
/// - A replace collects its chunks in `.brpl/replace/<SHA-256 of the path>` and renames that
///   over the path at the last chunk. The temporary file's name depends only on the path, so
///   a replace interrupted by a crash resumes from its last acked chunk.
/// - A delete removes the file, and the directories it leaves empty.
///
/// Every path is opened through ``DataDirectory``, so a symlink anywhere in it is refused.
///
/// Used strictly sequentially by one follower session: `apply`, `takeDirty` and `closeAll`
/// are never called concurrently (each call may run on a different thread, one after the
/// other). That is why it is `@unchecked Sendable` and has no lock.
package final class RecordApplier: @unchecked Sendable {
    /// An open file and its size as this applier left it.
    private struct OpenFile {
        var handle: FileHandle
        var size: Int
    }

    /// The most files kept open for appends; beyond it an arbitrary one is closed (and reopened on use).
    private static let maximumOpenFiles = 256

    private let directory: DataDirectory
    private let durable: Bool
    /// Files being appended to, by path.
    private var appending: [ReplicatedPath: OpenFile] = [:]
    /// Temporary files of replaces still waiting for their last chunk, by target path.
    private var replacing: [ReplicatedPath: OpenFile] = [:]
    /// Handles written since the last `takeDirty`, by identity (only when durable).
    private var dirtyFiles: [ObjectIdentifier: FileHandle] = [:]
    /// Paths whose parent directory needs an fsync (only when durable).
    private var dirtyDirectories: Set<ReplicatedPath> = []

    /// - Parameters:
    ///   - directory: The follower's data directory.
    ///   - durable: Whether writes are made durable; when false nothing is fsynced and
    ///     ``takeDirty()`` always returns an empty set.
    package init(directory: DataDirectory, durable: Bool) {
        self.directory = directory
        self.durable = durable
    }

    /// Applies `records` in order. On an error, the records before the failing one stay
    /// applied; the session must end (and resync) since nothing more can be acked.
    package func apply(_ records: [ReplicationRecord]) throws(ApplyError) {
        for record in records {
            do {
                switch record {
                case .append(let path, let offset, let bytes):
                    try append(to: path, at: offset, bytes)
                case .replace(let path, let offset, let chunk, let flags):
                    try replace(path, at: offset, chunk, flags: flags)
                case .delete(let path):
                    try delete(path)
                }
            } catch {
                // Whatever was cached for the path may no longer match the disk.
                appending[record.path] = nil
                replacing[record.path] = nil
                throw error
            }
        }
    }

    /// What must be fsynced for everything applied since the last call; resets the set.
    package func takeDirty() -> DirtySet {
        defer {
            dirtyFiles = [:]
            dirtyDirectories = []
        }
        return DirtySet(files: Array(dirtyFiles.values), directories: Array(dirtyDirectories))
    }

    /// Fsyncs every file, then every directory (each directory once).
    ///
    /// An applier that is not durable hands out empty sets, so this does nothing for it. A
    /// directory that no longer exists (a file created and deleted before the sync, whose
    /// delete removed the emptied directory) needs nothing and is skipped.
    package static func makeDurable(_ dirty: DirtySet, in directory: DataDirectory) throws(StorageError) {
        for file in dirty.files { try file.sync() }
        // Keyed by the directory as a path, so names compare byte for byte.
        var synced: Set<ReplicatedPath> = []
        for path in dirty.directories {
            let parent = path.string.utf8.lastIndex(of: UInt8(ascii: "/")).map { path.string[..<$0] } ?? ""
            guard synced.insert(ReplicatedPath(alreadyValidated: String(parent))).inserted else { continue }
            do {
                try directory.syncDirectory(containing: path)
            } catch where error.errno == ENOENT {
                continue
            }
        }
    }

    /// Drops cached handles (after a full sync replaced files, or when the session ends).
    /// Handles still in the dirty set stay open until that set is made durable.
    package func closeAll() {
        appending = [:]
        replacing = [:]
    }

    // MARK: Records

    private func append(to path: ReplicatedPath, at offset: UInt64, _ bytes: ByteBuffer) throws(ApplyError) {
        let start = try Self.fileOffset(offset, count: bytes.readableBytes, path: path)
        var file: OpenFile
        if let cached = appending[path] {
            file = cached
        } else {
            file = try ApplyError.catching { () throws(StorageError) in try open(path) }
        }
        guard start <= file.size else {
            throw .inconsistent("append to \(path) at offset \(offset) but the file has \(file.size) bytes: records are missing")
        }
        try ApplyError.catching { () throws(StorageError) in
            if start < file.size { try file.handle.truncate(to: start) }
            try Self.write(bytes, to: file.handle, at: start)
        }
        file.size = start + bytes.readableBytes
        if appending[path] == nil && appending.count >= Self.maximumOpenFiles {
            appending.remove(at: appending.startIndex)
        }
        appending[path] = file
        markDirty(file.handle)
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
            markDirty(temporary.handle)
            return
        }
        replacing[path] = nil
        try ApplyError.catching { () throws(StorageError) in
            if durable {
                try temporary.handle.sync()
                // The rename makes the path's own directory durable; directories it had to
                // create above that need an fsync of their parents too.
                if try directory.openForReading(path) == nil { markAncestorsDirty(of: path, includingSelf: false) }
            }
            try directory.rename(rawPath: temporaryPath, over: path, durable: durable)
        }
        // The temporary file is durable and now is the file; the old file is gone.
        dirtyFiles[ObjectIdentifier(temporary.handle)] = nil
        if let old = appending.removeValue(forKey: path) { dirtyFiles[ObjectIdentifier(old.handle)] = nil }
    }

    private func delete(_ path: ReplicatedPath) throws(ApplyError) {
        if let old = appending.removeValue(forKey: path) { dirtyFiles[ObjectIdentifier(old.handle)] = nil }
        try ApplyError.catching { () throws(StorageError) in try directory.delete(path, durable: durable) }
    }

    // MARK: Helpers

    /// Opens a file for appending, creating it (and its directories) when missing.
    private func open(_ path: ReplicatedPath) throws(StorageError) -> OpenFile {
        let existed = try directory.openForReading(path) != nil
        let handle = try directory.openFile(path, create: true)
        if !existed { markAncestorsDirty(of: path, includingSelf: true) }
        return OpenFile(handle: handle, size: try handle.size())
    }

    private func markDirty(_ handle: FileHandle) {
        if durable { dirtyFiles[ObjectIdentifier(handle)] = handle }
    }

    /// Marks the directories holding a new path's entries: its parent and, conservatively,
    /// every directory above it (any of them may have just been created).
    private func markAncestorsDirty(of path: ReplicatedPath, includingSelf: Bool) {
        guard durable else { return }
        if includingSelf { dirtyDirectories.insert(path) }
        var string = Substring(path.string)
        while let slash = string.utf8.lastIndex(of: UInt8(ascii: "/")) {
            string = string[..<slash]
            dirtyDirectories.insert(ReplicatedPath(alreadyValidated: String(string)))
        }
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

    private static func write(_ buffer: ByteBuffer, to handle: FileHandle, at offset: Int) throws(StorageError) {
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
