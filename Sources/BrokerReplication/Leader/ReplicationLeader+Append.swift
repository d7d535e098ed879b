import NIOCore

extension ReplicationLeader {
    /// Appends `bytes` to the file at `path` (created when missing) and replicates the append.
    /// For several records at once, ``append(to:contentsOf:)-(_,[ByteBuffer])`` takes the locks once.
    ///
    /// - Parameters:
    ///   - path: the file, relative to the data directory, following the rules of
    ///     ``ReplicatedPath``; missing directories on the way are created.
    ///   - bytes: the bytes to append at the file's end.
    /// - Returns: the LSN of the change (of its last chunk, for writes above `chunkBytes`).
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidPath`` for an
    ///   invalid path; ``ReplicationError/Code/storage`` when the local write fails (nothing is
    ///   replicated then); ``ReplicationError/Code/notEnoughReplicas`` when min-ISR admission
    ///   refuses the write, ``ReplicationError/Code/writeTimedOut`` (evict mode) when
    ///   `producerTimeout` passes while it waits behind earlier writes to the file (nothing is
    ///   written then); ``ReplicationError/Code/partialWrite`` when a write above `chunkBytes`
    ///   fails locally after its first chunk (the message says what was replicated);
    ///   `CancellationError` when cancelled before it was written.
    @discardableResult
    public func append(to path: String, bytes: ByteBuffer) async throws -> UInt64 {
        let path = try ReplicatedPath(path, maximumBytes: configuration.wireLimits.maximumPathBytes)
        return try await withWriter(for: path) { writer, deadline in try await appendInChunks(bytes, to: writer, deadline: deadline) }
    }

    /// Runs `body` holding the file's writer lock. Waiting for earlier writes to the file is
    /// part of this write's `producerTimeout`, not added to it: `body` gets what is left as a
    /// deadline for its own admission.
    ///
    /// Every public write goes through here, so this is where the module's internal
    /// ``StorageError`` becomes the ``ReplicationError`` the broker sees.
    func withWriter<T>(for path: ReplicatedPath, _ body: (FileWriter, ContinuousClock.Instant) async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + configuration.producerTimeout
        let written: T?
        do {
            written = try await core.writers.withWriter(for: path) { writer in
                try await writer.lock.withLock(before: deadline, {
                    // Checked with the file's lock held: a write queued before a step-down is refused too.
                    if let reason = core.steppedDown { throw ReplicationError.notLeader("write to \(path.string) refused: \(reason); nothing was written") }
                    return try await body(writer, deadline)
                })
            }
        } catch {
            throw ReplicationError.publicError(for: error)
        }
        guard let result = written else {
            let waited = "waited producerTimeout (\(configuration.producerTimeout)) for earlier writes to \(path.string); nothing of it was written"
            if case .minInSyncReplicas = configuration.policy {
                throw ReplicationError.notEnoughReplicas("write \(waited) (they wait for in-sync followers: \(configuration.policy))")
            }
            throw ReplicationError.writeTimedOut("write \(waited)")
        }
        return result
    }

    /// Appends `bytes` in chunks of at most `chunkBytes`. The caller holds `writer.lock`.
    ///
    /// All or nothing for the broker: the write is admitted once, before anything is written,
    /// and later chunks only wait for room (``paceLargeWrite()``), never fail for it. Only a
    /// local write failure can stop it after its first chunk, and then the error says which
    /// bytes were written and replicated.
    func appendInChunks(_ bytes: ByteBuffer, to writer: FileWriter, deadline: ContinuousClock.Instant) async throws -> UInt64 {
        // Admitted before the file is even opened: a refused write leaves no trace.
        try await core.admitWrite(bytes: min(bytes.readableBytes, configuration.chunkBytes), timeout: deadline - .now)
        let (handle, startSize) = try writer.open(in: directory)
        var size = startSize
        var remaining = bytes
        var lsn: UInt64 = 0
        repeat {
            let chunk = remaining.readSlice(length: min(remaining.readableBytes, configuration.chunkBytes))!
            do {
                try core.localWrites.measure { () throws(StorageError) in directory.injectedFaults.stallIfAsked(); try chunk.withUnsafeReadableBytes { buffer throws(StorageError) in try handle.write(buffer, at: size) } }
            } catch {
                // Leave no half-written bytes behind the replicated size.
                do { try handle.truncate(to: size) } catch { writer.truncateFailed() }
                guard size > startSize else { throw error }
                throw ReplicationError.partialWrite(
                    "append of \(bytes.readableBytes) bytes to \(writer.path.string) failed after \(size - startSize) bytes: offsets \(startSize)..<\(size) are written and replicated (LSNs up to \(lsn)), offsets from \(size) on are not: \(error)"
                )
            }
            lsn = core.commit(.append(path: writer.path, offset: UInt64(size), bytes: chunk), change: .grew(toSize: size + chunk.readableBytes))
            size += chunk.readableBytes
            writer.setSize(size)
            if remaining.readableBytes > 0 { await paceLargeWrite() }
        } while remaining.readableBytes > 0
        return lsn
    }

    /// Appends `bytes` to the file at `path`; see ``append(to:bytes:)-(_,ByteBuffer)``.
    ///
    /// - Parameters:
    ///   - path: the file, relative to the data directory, following the rules of
    ///     ``ReplicatedPath``.
    ///   - bytes: the bytes to append at the file's end.
    /// - Returns: the LSN of the change (of its last chunk, for writes above `chunkBytes`).
    /// - Throws: ``ReplicationError`` with the codes of ``append(to:bytes:)-(_,ByteBuffer)``:
    ///   ``ReplicationError/Code/invalidPath``, ``ReplicationError/Code/storage``,
    ///   ``ReplicationError/Code/notEnoughReplicas``, ``ReplicationError/Code/writeTimedOut``
    ///   or ``ReplicationError/Code/partialWrite``; `CancellationError` when cancelled before
    ///   it was written.
    @discardableResult
    public func append(to path: String, bytes: [UInt8]) async throws -> UInt64 {
        try await append(to: path, bytes: ByteBuffer(bytes: bytes))
    }

    /// A large write waits between chunks while a live follower's queue is more than half full,
    /// at most `ackTimeout`: a healthy follower is not evicted by one big write, and a stuck
    /// one is evicted by its ack timeout instead of holding the write longer.
    func paceLargeWrite() async {
        core.sealOpenBatch()
        let deadline = ContinuousClock.now + configuration.ackTimeout
        while core.queuesLackRoom(for: configuration.chunkBytes), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}
