import NIOCore

extension ReplicationLeader {
    /// Replaces the whole file at `path` with `contents` (through a temporary file, fsync and
    /// rename locally) and replicates the replacement; followers see it atomically too.
    ///
    /// - Parameters:
    ///   - path: the file, relative to the data directory, following the rules of
    ///     ``ReplicatedPath``; created (with missing directories) when it does not exist.
    ///   - contents: the file's new contents.
    /// - Returns: the LSN of the replacement (of its last chunk, for contents above `chunkBytes`).
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidPath`` for an
    ///   invalid path; ``ReplicationError/Code/storage`` when the local replace fails (nothing
    ///   is replicated then, unless only the directory's fsync failed: then the replacement is
    ///   replicated before the error is thrown); ``ReplicationError/Code/notEnoughReplicas`` or
    ///   ``ReplicationError/Code/writeTimedOut`` as for ``append(to:bytes:)-(_,ByteBuffer)``.
    @discardableResult
    public func replace(_ path: String, contents: ByteBuffer) async throws -> UInt64 {
        let path = try ReplicatedPath(path, maximumBytes: configuration.wireLimits.maximumPathBytes)
        return try await withWriter(for: path) { writer, deadline in
            // A replace is admitted whole before it changes anything locally.
            try await core.admitWrite(bytes: min(contents.readableBytes, configuration.chunkBytes), timeout: deadline - .now)
            let previous = core.beginChanging(path)
            let temporary = DataDirectory.reservedDirectory + "/tmp/replace-\(writer.path.string.utf8.count)-\(UInt64.random(in: 0...UInt64.max))"
            // Set when the file was replaced locally but its directory entry could not be made
            // durable: the change happened, so it is replicated, then reported.
            var notDurable: (any Error)?
            do {
                let handle = try directory.openFile(rawPath: temporary, create: true, truncate: true)
                try core.localWrites.measure { () throws(StorageError) in
                    try contents.withUnsafeReadableBytes { buffer throws(StorageError) in try handle.write(buffer, at: 0) }
                    try handle.sync()
                }
                try directory.rename(rawPath: temporary, over: path, durable: false)
                writer.setHandle(handle, size: contents.readableBytes)
                do {
                    try directory.syncDirectory(containing: path)
                } catch {
                    notDurable = error
                }
            } catch {
                // The local file is unchanged: replicate nothing, and let full syncs cut again.
                writer.setHandle(nil, size: 0)
                try? directory.removeFile(rawPath: temporary)
                core.abandonChanging(path, restoring: previous)
                throw error
            }
            var remaining = contents
            var offset = 0
            var lsn: UInt64 = 0
            repeat {
                let chunk = remaining.readSlice(length: min(remaining.readableBytes, configuration.chunkBytes))!
                var flags: ReplicationRecord.ReplaceFlags = offset == 0 ? .firstChunk : []
                if remaining.readableBytes == 0 { flags.insert(.lastChunk) }
                let change: Sequencer.FileChange = flags.contains(.lastChunk) ? .replaced(size: contents.readableBytes) : .none
                lsn = core.commit(.replace(path: path, offset: UInt64(offset), chunk: chunk, flags: flags), change: change)
                offset += chunk.readableBytes
                if remaining.readableBytes > 0 { await paceLargeWrite() }
            } while remaining.readableBytes > 0
            if let notDurable { throw notDurable }
            return lsn
        }
    }

    /// Replaces the whole file at `path` with `contents`; see ``replace(_:contents:)-(_,ByteBuffer)``.
    ///
    /// - Parameters:
    ///   - path: the file, relative to the data directory, following the rules of
    ///     ``ReplicatedPath``.
    ///   - contents: the file's new contents.
    /// - Returns: the LSN of the replacement (of its last chunk, for contents above `chunkBytes`).
    /// - Throws: ``ReplicationError`` with the codes of ``replace(_:contents:)-(_,ByteBuffer)``:
    ///   ``ReplicationError/Code/invalidPath``, ``ReplicationError/Code/storage``,
    ///   ``ReplicationError/Code/notEnoughReplicas`` or ``ReplicationError/Code/writeTimedOut``.
    @discardableResult
    public func replace(_ path: String, contents: [UInt8]) async throws -> UInt64 {
        try await replace(path, contents: ByteBuffer(bytes: contents))
    }

    /// Deletes the file at `path` (a missing file is fine) and replicates the delete.
    ///
    /// Directories the delete leaves empty are removed too.
    ///
    /// - Parameter path: the file, relative to the data directory, following the rules of
    ///   ``ReplicatedPath``.
    /// - Returns: the LSN of the delete.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidPath`` for an
    ///   invalid path; ``ReplicationError/Code/storage`` when the local delete fails (nothing is
    ///   replicated then, unless the file is gone and only making that durable failed: then the
    ///   delete is replicated before the error is thrown); ``ReplicationError/Code/notEnoughReplicas``
    ///   or ``ReplicationError/Code/writeTimedOut`` as for ``append(to:bytes:)-(_,ByteBuffer)``.
    @discardableResult
    public func delete(_ path: String) async throws -> UInt64 {
        let path = try ReplicatedPath(path, maximumBytes: configuration.wireLimits.maximumPathBytes)
        return try await withWriter(for: path) { writer, deadline in
            try await core.admitWrite(bytes: 0, timeout: deadline - .now)
            let previous = core.beginChanging(path)
            writer.setHandle(nil, size: 0)
            do {
                try directory.delete(path, durable: true)
            } catch {
                // Still there (or its path unusable): nothing changed, replicate nothing. Gone:
                // only making the delete durable failed, so replicate it, then report.
                let stillThere: Bool
                do {
                    stillThere = try directory.openForReading(path) != nil
                } catch {
                    stillThere = true
                }
                if stillThere {
                    core.abandonChanging(path, restoring: previous)
                    throw error
                }
                _ = core.commit(.delete(path: path), change: .deleted)
                throw error
            }
            return core.commit(.delete(path: path), change: .deleted)
        }
    }
}
