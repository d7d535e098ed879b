import NIOCore

extension ReplicationLeader {
    /// Appends several records to one file, in order, as one local write; each record gets its own LSN.
    ///
    /// Brokers receive publishes in batches (pipelined AMQP publishers, Kafka producer
    /// batches). Where `records.count` calls to ``append(to:bytes:)-(_,ByteBuffer)`` take the
    /// file's writer lock, write and take the leader's state lock once per record, this takes
    /// the writer lock once, admits the records once, writes them with one `pwritev` and gives
    /// them a contiguous range of LSNs under one hold of the state lock. Followers receive the
    /// same `append` records, one per record with its own offset, so the wire format and the
    /// followers do not change. A confirm (``waitForReplication(upTo:)``) for the returned LSN
    /// covers every record of the call.
    ///
    /// Larger batches are handled like large single appends:
    /// - Records are written in runs of at most `chunkBytes` (1 MiB) in all, each run admitted,
    ///   written and committed as above; between runs the call waits while a live follower's
    ///   queue is more than half full (at most `ackTimeout`), so one big batch neither holds the
    ///   state lock for long nor evicts a healthy follower.
    /// - A record larger than `chunkBytes` is appended in its place through the single-record
    ///   path (chunked), because one record must fit a batch frame.
    ///
    /// The writer lock is held throughout, so the records land in order and no other write to
    /// the file comes between them; only between runs may other files' changes take LSNs.
    ///
    /// An empty `records` writes and replicates nothing and returns ``lastLSN`` (so a confirm
    /// for it waits for nothing new).
    ///
    /// - Parameters:
    ///   - path: the file, relative to the data directory, following the rules of
    ///     ``ReplicatedPath``; missing directories on the way are created.
    ///   - records: the records to append at the file's end, in this order.
    /// - Returns: the LSN of the last record. When every record fits one run, the call's LSNs
    ///   are the `records.count` LSNs ending there.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidPath`` for an
    ///   invalid path; ``ReplicationError/Code/storage`` when the local write fails, after
    ///   truncating the file back to where the failed run started;
    ///   ``ReplicationError/Code/notEnoughReplicas`` when min-ISR admission refuses a run, or
    ///   ``ReplicationError/Code/writeTimedOut`` as for a single append. Runs before the failed
    ///   one stay written and replicated; nothing after it is.
    @discardableResult
    public func append(to path: String, contentsOf records: [ByteBuffer]) async throws -> UInt64 {
        let path = try ReplicatedPath(path, maximumBytes: configuration.wireLimits.maximumPathBytes)
        guard !records.isEmpty else { return lastLSN }
        return try await withWriter(for: path) { writer, deadline in
            var lsn: UInt64 = 0
            var next = records.startIndex
            while next < records.endIndex {
                if next > records.startIndex { await paceLargeWrite() }
                if records[next].readableBytes > configuration.chunkBytes {
                    lsn = try await appendInChunks(records[next], to: writer, deadline: deadline)
                    next += 1
                } else {
                    let run = records[next..<endOfRun(in: records, from: next)]
                    lsn = try await appendRun(run, to: writer, deadline: deadline)
                    next = run.endIndex
                }
            }
            return lsn
        }
    }

    /// Appends several records to the file at `path`; see ``append(to:contentsOf:)-(_,[ByteBuffer])``.
    ///
    /// - Parameters:
    ///   - path: the file, relative to the data directory, following the rules of
    ///     ``ReplicatedPath``.
    ///   - records: the records to append at the file's end, in this order.
    /// - Returns: the LSN of the last record (``lastLSN`` for no records).
    /// - Throws: ``ReplicationError`` with the codes of ``append(to:contentsOf:)-(_,[ByteBuffer])``:
    ///   ``ReplicationError/Code/invalidPath``, ``ReplicationError/Code/storage``,
    ///   ``ReplicationError/Code/notEnoughReplicas`` or ``ReplicationError/Code/writeTimedOut``.
    @discardableResult
    public func append(to path: String, contentsOf records: [[UInt8]]) async throws -> UInt64 {
        try await append(to: path, contentsOf: records.map { ByteBuffer(bytes: $0) })
    }

    /// Where the run that starts at `start` ends: the records from there that fit
    /// `chunkBytes` together (at least the first, which the caller checked fits alone).
    private func endOfRun(in records: [ByteBuffer], from start: Int) -> Int {
        var runBytes = records[start].readableBytes
        var end = start + 1
        while end < records.endIndex, records[end].readableBytes <= configuration.chunkBytes - runBytes {
            runBytes += records[end].readableBytes
            end += 1
        }
        return end
    }

    /// Admits `run` once, writes it with one `pwritev` at the file's end and commits it under
    /// one hold of the state lock. The caller holds `writer.lock`.
    private func appendRun(_ run: ArraySlice<ByteBuffer>, to writer: FileWriter, deadline: ContinuousClock.Instant) async throws -> UInt64 {
        let runBytes = run.reduce(0) { $0 + $1.readableBytes }
        // Admitted before the file is even opened, as in the single path: a refused run leaves no trace.
        try await core.admitWrite(bytes: runBytes, timeout: deadline - .now)
        let (handle, startSize) = try writer.open(in: directory)
        do {
            try core.localWrites.measure { () throws(StorageError) in try withUnsafeReadableBytes(of: run) { buffers throws(StorageError) in try handle.write(buffers, at: startSize) } }
        } catch {
            // Leave no half-written bytes behind the replicated size.
            do { try handle.truncate(to: startSize) } catch { writer.truncateFailed() }
            throw error
        }
        let lsn = core.commit(appends: run, to: writer.path, startingAt: startSize)
        writer.setSize(startSize + runBytes)
        return lsn
    }
}

/// Calls `body` with the readable bytes of every buffer at once. A pointer is only promised
/// inside its own buffer's closure, so each buffer's storage is retained until `body` returns,
/// as swift-nio's vectored socket writes do (NIOPosix `PendingWritesManager`).
private func withUnsafeReadableBytes<Result>(
    of buffers: ArraySlice<ByteBuffer>, _ body: ([UnsafeRawBufferPointer]) throws(StorageError) -> Result
) throws(StorageError) -> Result {
    var pointers: [UnsafeRawBufferPointer] = []
    var storages: [Unmanaged<AnyObject>] = []
    pointers.reserveCapacity(buffers.count)
    storages.reserveCapacity(buffers.count)
    for buffer in buffers {
        buffer.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
            pointers.append(bytes)
            storages.append(storage.retain())
        }
    }
    defer { for storage in storages { storage.release() } }
    return try body(pointers)
}
