import LZ4
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends one follower a full sync: the files as of a consistent cut at LSN c, after which the
/// follower streams from c + 1 out of the backlog while producers keep writing.
///
/// The cut is taken under the same lock that assigns LSNs, with file handles opened just
/// before: appends only grow files, and replaces and deletes change a file's generation, so
/// the handles show every file exactly as of c even if the broker changes it afterwards.
///
/// The manifest gives every file's size and the CRC32C of each 1 MiB chunk, from the
/// leader's ``ChunkIndex`` (only chunks it has not indexed yet are read). The follower asks
/// for each file from the first byte it lacks, so what crosses is what changed.
struct FullSyncSender {
    let leader: ReplicationLeader
    let session: FollowerSession
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let logger: Logger

    private var configuration: ReplicationLeaderConfiguration { leader.configuration }

    /// The files kept changing for `fullSyncCutTimeout`: the follower is evicted with this as
    /// the detail, and syncs again when it reconnects.
    struct NoConsistentCut: Error, CustomStringConvertible {
        let description: String
    }

    /// One requested file: sent from `start` to its size at the cut.
    struct Transfer {
        var fileIndex: Int
        var start: Int
    }

    /// One frame's worth of a requested file; `ordinal` counts the requested files.
    struct Piece {
        var ordinal: Int
        var fileIndex: Int
        var offset: Int
        var length: Int
    }

    /// Reads and compresses `piece` on the thread pool.
    private func frame(for piece: Piece, of files: FullSyncFiles) -> Task<ByteBuffer, any Error> {
        Task {
            try await NIOThreadPool.singleton.runIfActive {
                // A compressor per 1 MiB chunk: its 16 KiB state is noise next to the read.
                try Self.chunkFrame(files: files, index: piece.fileIndex, offset: piece.offset, length: piece.length, compressor: LZ4BlockCompressor())
            }
        }
    }

    /// Runs the sync and returns the cut LSN.
    func run(requests: AsyncStream<SyncRequest>) async throws -> UInt64 {
        let started = ContinuousClock.now
        let (cutLSN, files) = try await takeCut()
        try await send(.syncBegin(SyncBegin(cutLSN: cutLSN, fileCount: UInt32(files.files.count))))
        let indexChanged = try await sendManifest(files)

        var requested: [SyncRequest.File] = []
        var seen = Set<UInt32>()
        for await request in requests {
            for file in request.files {
                guard Int(file.index) < files.files.count, file.offset <= UInt64(files.files[Int(file.index)].size) else {
                    throw WireError(.malformedFrame(type: .syncRequest, reason: "file \(file.index) from offset \(file.offset) is not in the manifest of \(files.files.count) files"))
                }
                guard seen.insert(file.index).inserted else {
                    throw WireError(.malformedFrame(type: .syncRequest, reason: "file \(file.index) requested twice"))
                }
                requested.append(file)
            }
            if request.isLast { break }
        }
        try Task.checkCancellation()
        files.keepOnly(Set(requested.map { Int($0.index) }))
        // A follower's partial last chunk is checked here: at most one chunk read per file.
        let transfers = try await NIOThreadPool.singleton.runIfActive { [requested] in
            try requested.map { request in
                let offset = Int(request.offset)
                let chunkStart = offset - offset % ChunkIndex.chunkBytes
                guard offset > chunkStart else { return Transfer(fileIndex: Int(request.index), start: offset) }
                let agrees = try files.handle(Int(request.index)).checksum(from: chunkStart, length: offset - chunkStart) == request.prefixChecksum
                return Transfer(fileIndex: Int(request.index), start: agrees ? offset : chunkStart)
            }
        }

        let totalBytes = transfers.reduce(0) { $0 + files.files[$1.fileIndex].size - $1.start }
        let keptBytes = transfers.reduce(0) { $0 + $1.start }
        logger.info(
            "full sync started",
            metadata: [
                "follower": "\(session.nodeID)", "cutLSN": "\(cutLSN)", "files": "\(transfers.count) of \(files.files.count)",
                "bytes": "\(totalBytes)", "keptBytes": "\(keptBytes)",
            ]
        )
        var sentBytes = 0
        var lastReport = ContinuousClock.now
        var progress = SyncProgress(cutLSN: cutLSN, filesDone: 0, files: transfers.count, bytesDone: 0, bytes: totalBytes, bytesKept: keptBytes, bytesPerSecond: 0, secondsLeft: 0)
        report(&progress, started: started, log: false)
        // The next frame is read and compressed while the current one is written, so the
        // leader's reading and compressing overlap the network and the follower's writing.
        // Pieces are made as they are reached: their number follows the directory.
        var pieces = transfers.enumerated().lazy.flatMap { [chunkBytes = configuration.chunkBytes] ordinal, transfer in
            let size = files.files[transfer.fileIndex].size
            return stride(from: transfer.start, to: size, by: chunkBytes).lazy.map { offset in
                Piece(ordinal: ordinal, fileIndex: transfer.fileIndex, offset: offset, length: min(chunkBytes, size - offset))
            }
        }.makeIterator()
        var upcoming = pieces.next()
        var next = upcoming.map { frame(for: $0, of: files) }
        defer { next?.cancel() }
        while let piece = upcoming {
            let frame = try await next!.value
            upcoming = pieces.next()
            next = upcoming.map { self.frame(for: $0, of: files) }
            if upcoming?.fileIndex != piece.fileIndex { files.done(with: piece.fileIndex) }
            try await leader.catchUpLimiter.pace(frame.readableBytes) { [channel = session.channel] in
                channel.triggerUserOutboundEvent(LivenessEvent.syncMoved, promise: nil)
            }
            // Returns once the channel took it, which it does only while the follower reads.
            let wireBytes = frame.readableBytes
            try await outbound.write(frame)
            session.channel.triggerUserOutboundEvent(LivenessEvent.syncChunkSent, promise: nil)
            leader.core.recordSyncSent(contentBytes: piece.length, wireBytes: wireBytes)
            sentBytes += piece.length
            if ContinuousClock.now - lastReport >= .milliseconds(200) {
                // Status every 200 ms, the log line every second.
                let log = ContinuousClock.now - lastReport >= .seconds(1)
                lastReport = ContinuousClock.now
                progress.filesDone = piece.ordinal
                progress.bytesDone = sentBytes
                report(&progress, started: started, log: log)
            }
        }
        // Stream from the cut on before the follower can ack it: its ack must find the cut
        // already counted as sent, and the ack timeout armed for it.
        progress.filesDone = transfers.count
        progress.bytesDone = sentBytes
        report(&progress, started: started, log: false)
        leader.core.finishFullSync(session, cutLSN: cutLSN)
        try await session.channel.triggerUserOutboundEvent(LivenessEvent.syncFinished(cutLSN: cutLSN)).get()
        try await send(.syncEnd(cutLSN: cutLSN))
        if indexChanged { await storeChunkIndex() }
        logger.info(
            "full sync sent",
            metadata: [
                "follower": "\(session.nodeID)", "cutLSN": "\(cutLSN)", "files": "\(transfers.count)", "bytes": "\(sentBytes)",
                "keptBytes": "\(keptBytes)", "seconds": "\(Self.seconds(ContinuousClock.now - started))",
            ]
        )
        return cutLSN
    }

    /// Stores the chunk index after a flush, so it never describes bytes a crash could still
    /// take back. Done once the sync is sent: the flush may take a while after heavy writes.
    private func storeChunkIndex() async {
        do {
            try await NIOThreadPool.singleton.runIfActive { [directory = leader.directory, index = leader.chunkIndex] in
                try directory.syncFileSystem()
                try ChunkIndexFile(directory: directory).store(index.snapshot)
            }
        } catch {
            leader.repeatedWarnings.log(logger, .warning, "cannot store the chunk index; the next restart reads the files again", key: "chunk-index", metadata: ["error": "\(error)"])
        }
    }

    /// Sends the manifest in frames of about 256 KiB, far below the frame limit, each as soon
    /// as its files' chunk checksums are known: from the leader's ``ChunkIndex`` where it
    /// holds, read otherwise. So the manifest is never whole in memory. Returns whether any
    /// chunk had to be read (then the index is stored again once the sync is sent).
    ///
    /// A file whose entry alone exceeds the frame limit (above about 2 TiB) cannot be synced,
    /// and the error says so.
    private func sendManifest(_ files: FullSyncFiles) async throws -> Bool {
        let limit = configuration.wireLimits.maximumDataFrameBodyBytes - 6
        var indexChanged = false
        var index = 0
        while index < files.files.count {
            let first = index
            // Reading its own files is progress too: the follower is not the one holding the sync up.
            let (entries, bytesRead) = try await NIOThreadPool.singleton.runIfActive { [channel = session.channel, chunkIndex = leader.chunkIndex] in
                var entries: [SyncManifestEntry] = []
                var bytes = 0
                var bytesRead = 0
                while first + entries.count < files.files.count, bytes < 256 * 1024 {
                    let file = files.files[first + entries.count]
                    let chunkCount = SyncManifestEntry.chunkCount(forSize: UInt64(file.size))
                    let entryBytes = file.path.string.utf8.count + 2 + 8 + 4 + 4 * chunkCount
                    if entryBytes > limit {
                        throw StorageError(operation: "full sync of \(file.path): its manifest entry of \(entryBytes) bytes exceeds the frame limit of \(limit) bytes", errno: EFBIG)
                    }
                    if bytes + entryBytes > limit { break }
                    var reader = try chunkIndex.reader(for: file.path, file: files.handle(first + entries.count))
                    var entry = SyncManifestEntry(path: file.path, size: UInt64(file.size), chunkChecksums: [])
                    entry.chunkChecksums = try (0..<chunkCount).map { chunk in
                        let before = reader.bytesRead
                        let checksum = try reader.checksum(ofChunk: chunk, length: entry.length(ofChunk: chunk))
                        if reader.bytesRead > before { channel.triggerUserOutboundEvent(LivenessEvent.syncMoved, promise: nil) }
                        return checksum
                    }
                    bytesRead += reader.bytesRead
                    chunkIndex.record(reader)
                    entries.append(entry)
                    bytes += entryBytes
                }
                return (entries, bytesRead)
            }
            indexChanged = indexChanged || bytesRead > 0
            try await send(.syncManifest(firstIndex: UInt32(index), entries: entries))
            index += entries.count
        }
        return indexChanged
    }

    private func report(_ progress: inout SyncProgress, started: ContinuousClock.Instant, log: Bool) {
        let elapsed = Self.seconds(ContinuousClock.now - started)
        let rate = elapsed > 0 ? Double(progress.bytesDone) / elapsed : 0
        progress.bytesPerSecond = Int(rate)
        progress.secondsLeft = rate > 0 ? Int((Double(progress.bytes - progress.bytesDone) / rate).rounded()) : 0
        leader.core.recordSyncProgress(progress, of: session)
        guard log else { return }
        logger.info(
            "full sync progress",
            metadata: [
                "follower": "\(session.nodeID)", "files": "\(progress.filesDone)/\(progress.files)", "bytes": "\(progress.bytesDone)/\(progress.bytes)",
                "bytesPerSecond": "\(progress.bytesPerSecond)", "secondsLeft": "\(progress.secondsLeft)",
            ]
        )
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func send(_ message: WireMessage) async throws {
        let frame = message.encoded(using: session.channel.allocator)
        leader.core.recordSyncSent(contentBytes: 0, wireBytes: frame.readableBytes)
        try await outbound.write(frame)
    }

    private static func chunkFrame(files: FullSyncFiles, index: Int, offset: Int, length: Int, compressor: LZ4BlockCompressor) throws -> ByteBuffer {
        let handle = try files.handle(index)
        var raw = ByteBuffer()
        raw.reserveCapacity(length)
        let read = try raw.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { buffer throws(StorageError) in
            try handle.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.prefix(length)), at: offset)
        }
        guard read == length else {
            throw StorageError(operation: "read \(files.files[index].path): \(read) bytes at offset \(offset), expected \(length) (file shrank under the module)", errno: 5)
        }
        let bound = LZ4Block.maximumCompressedBytes(forInputBytes: length)
        var frame = ByteBuffer()
        frame.reserveCapacity(Frame.headerBytes + SyncChunk.headerBytes + bound)
        frame.writeRepeatingByte(0, count: Frame.headerBytes)
        frame.writeInteger(UInt32(index))
        frame.writeInteger(UInt64(offset))
        frame.writeInteger(UInt32(length))
        frame.writeInteger(DataFrame.codecLZ4Block)
        try raw.withUnsafeReadableBytes { source in
            _ = try frame.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                try compressor.compress(source, into: destination)
            }
        }
        Frame.fillHeader(in: &frame, at: 0, type: .syncChunk)
        return frame
    }

    /// Opens the first `fullSyncOpenFiles` files in manifest order, then takes the cut under
    /// the leader's lock; retries while a replace or delete is under way or a handle went
    /// stale, up to `fullSyncCutTimeout`. The other files are opened when the sync reaches
    /// them (``FullSyncFiles``).
    ///
    /// The retries count as progress: it is the leader that holds the sync up, and
    /// `fullSyncCutTimeout` bounds them.
    private func takeCut() async throws -> (UInt64, FullSyncFiles) {
        let deadline = ContinuousClock.now + configuration.fullSyncCutTimeout
        var opened: [ReplicatedPath: (handle: DataFile, generation: UInt64)] = [:]
        var toOpen = Array(leader.core.fileGenerations().keys.sorted { $0.string < $1.string }.prefix(configuration.fullSyncOpenFiles))
        while true {
            try Task.checkCancellation()
            let generations = leader.core.fileGenerations()
            let paths = toOpen
            let handles = try await NIOThreadPool.singleton.runIfActive {
                try paths.map { path in (path, try leader.directory.openForReading(path)) }
            }
            for (path, handle) in handles {
                if let handle, let generation = generations[path] { opened[path] = (handle, generation) } else { opened[path] = nil }
            }
            session.channel.triggerUserOutboundEvent(LivenessEvent.syncMoved, promise: nil)
            switch leader.core.takeCut(opened: opened.mapValues(\.generation)) {
            case .cut(let cutLSN, let files):
                // Consistent: every file opened is at the generation of the cut.
                let sorted = files.sorted { $0.path.string < $1.path.string }
                return (cutLSN, FullSyncFiles(files: sorted, openedBeforeCut: opened.mapValues(\.handle), directory: leader.directory, core: leader.core))
            case .reopen(let stale):
                toOpen = stale
            case .busy:
                toOpen = []
                try await Task.sleep(for: .milliseconds(1))
            }
            if ContinuousClock.now > deadline {
                throw NoConsistentCut(description: "full sync for \(session.nodeID): no consistent cut within \(configuration.fullSyncCutTimeout) (files kept changing)")
            }
        }
    }
}
