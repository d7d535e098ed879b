import LZ4
import Logging
import NIOCore
import NIOPosix

/// Sends one follower a full sync: the files as of a consistent cut at LSN c, after which the
/// follower streams from c + 1 out of the backlog while producers keep writing.
///
/// The cut is taken under the same lock that assigns LSNs, with file handles opened just
/// before: appends only grow files, and replaces and deletes change a file's generation, so
/// the handles show every file exactly as of c even if the broker changes it afterwards.
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

    struct CutFile {
        var path: ReplicatedPath
        var handle: DataFile
        var size: Int
        var checksum: UInt32
    }

    /// Runs the sync and returns the cut LSN.
    func run(requests: AsyncStream<SyncRequest>) async throws -> UInt64 {
        let started = ContinuousClock.now
        let (cutLSN, cutFiles) = try await takeCut()
        // Reading its own files is progress too: the follower is not the one holding the sync up.
        let files = try await NIOThreadPool.singleton.runIfActive {
            try cutFiles.map { file in
                let checksum = try file.handle.checksum(length: file.size) { [channel = session.channel] _ in channel.triggerUserOutboundEvent(LivenessEvent.syncMoved, promise: nil) }
                return CutFile(path: file.path, handle: file.handle, size: file.size, checksum: checksum)
            }
        }
        try await send(.syncBegin(SyncBegin(cutLSN: cutLSN, fileCount: UInt32(files.count))))
        var index = 0
        while index < files.count {
            // Manifest frames of about 256 KiB, far below the frame limit.
            var entries: [SyncManifestEntry] = []
            var bytes = 0
            while index + entries.count < files.count, bytes < 256 * 1024 {
                let file = files[index + entries.count]
                entries.append(SyncManifestEntry(path: file.path, size: UInt64(file.size), checksum: file.checksum))
                bytes += file.path.string.utf8.count + 14
            }
            try await send(.syncManifest(firstIndex: UInt32(index), entries: entries))
            index += entries.count
        }

        var requested: [Int] = []
        for await request in requests {
            for fileIndex in request.fileIndices {
                guard Int(fileIndex) < files.count else {
                    throw WireError(.malformedFrame(type: .syncRequest, reason: "file index \(fileIndex) is beyond the \(files.count) files of the manifest"))
                }
                requested.append(Int(fileIndex))
            }
            if request.isLast { break }
        }
        try Task.checkCancellation()

        let totalBytes = requested.reduce(0) { $0 + files[$1].size }
        logger.info(
            "full sync started",
            metadata: ["follower": "\(session.nodeID)", "cutLSN": "\(cutLSN)", "files": "\(requested.count) of \(files.count)", "bytes": "\(totalBytes)"]
        )
        var sentBytes = 0
        var lastReport = ContinuousClock.now
        report(started: started, cutLSN: cutLSN, filesDone: 0, files: requested.count, bytesDone: 0, bytes: totalBytes, log: false)
        for (done, fileIndex) in requested.enumerated() {
            let file = files[fileIndex]
            var offset = 0
            while offset < file.size {
                let length = min(configuration.chunkBytes, file.size - offset)
                let frame = try await NIOThreadPool.singleton.runIfActive { [offset] in
                    // A compressor per 1 MiB chunk: its 16 KiB state is noise next to the read.
                    try Self.chunkFrame(file: file, index: fileIndex, offset: offset, length: length, compressor: LZ4BlockCompressor())
                }
                // Returns once the channel took it, which it does only while the follower reads.
                try await outbound.write(frame)
                session.channel.triggerUserOutboundEvent(LivenessEvent.syncChunkSent, promise: nil)
                offset += length
                sentBytes += length
                if ContinuousClock.now - lastReport >= .milliseconds(200) {
                    // Status every 200 ms, the log line every second.
                    let log = ContinuousClock.now - lastReport >= .seconds(1)
                    lastReport = ContinuousClock.now
                    report(started: started, cutLSN: cutLSN, filesDone: done, files: requested.count, bytesDone: sentBytes, bytes: totalBytes, log: log)
                }
            }
        }
        // Stream from the cut on before the follower can ack it: its ack must find the cut
        // already counted as sent, and the ack timeout armed for it.
        report(started: started, cutLSN: cutLSN, filesDone: requested.count, files: requested.count, bytesDone: sentBytes, bytes: totalBytes, log: false)
        leader.core.finishFullSync(session, cutLSN: cutLSN)
        try await session.channel.triggerUserOutboundEvent(LivenessEvent.syncFinished(cutLSN: cutLSN)).get()
        try await send(.syncEnd(cutLSN: cutLSN))
        logger.info(
            "full sync sent",
            metadata: [
                "follower": "\(session.nodeID)", "cutLSN": "\(cutLSN)", "files": "\(requested.count)", "bytes": "\(sentBytes)",
                "seconds": "\(Self.seconds(ContinuousClock.now - started))",
            ]
        )
        return cutLSN
    }

    private func report(started: ContinuousClock.Instant, cutLSN: UInt64, filesDone: Int, files: Int, bytesDone: Int, bytes: Int, log: Bool) {
        let elapsed = Self.seconds(ContinuousClock.now - started)
        let rate = elapsed > 0 ? Double(bytesDone) / elapsed : 0
        let remaining = rate > 0 ? Double(bytes - bytesDone) / rate : 0
        let progress = SyncProgress(
            cutLSN: cutLSN, filesDone: filesDone, files: files, bytesDone: bytesDone, bytes: bytes,
            bytesPerSecond: Int(rate), secondsLeft: Int(remaining.rounded())
        )
        leader.core.recordSyncProgress(progress, of: session)
        guard log else { return }
        logger.info(
            "full sync progress",
            metadata: [
                "follower": "\(session.nodeID)", "files": "\(filesDone)/\(files)", "bytes": "\(bytesDone)/\(bytes)",
                "bytesPerSecond": "\(Int(rate))", "secondsLeft": "\(Int(remaining.rounded()))",
            ]
        )
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func send(_ message: WireMessage) async throws {
        try await outbound.write(message.encoded(using: session.channel.allocator))
    }

    private static func chunkFrame(file: CutFile, index: Int, offset: Int, length: Int, compressor: LZ4BlockCompressor) throws -> ByteBuffer {
        var raw = ByteBuffer()
        raw.reserveCapacity(length)
        let read = try raw.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { buffer throws(StorageError) in
            try file.handle.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.prefix(length)), at: offset)
        }
        guard read == length else {
            throw StorageError(operation: "read \(file.path): \(read) bytes at offset \(offset), expected \(length) (file shrank under the module)", errno: 5)
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

    /// Opens every file, then takes the cut under the leader's lock; retries while a replace or
    /// delete is under way or a handle went stale, up to `fullSyncCutTimeout`.
    ///
    /// The retries count as progress: it is the leader that holds the sync up, and
    /// `fullSyncCutTimeout` bounds them.
    private func takeCut() async throws -> (UInt64, [(path: ReplicatedPath, handle: DataFile, size: Int)]) {
        let deadline = ContinuousClock.now + configuration.fullSyncCutTimeout
        var opened: [ReplicatedPath: (handle: DataFile, generation: UInt64)] = [:]
        var toOpen = Array(leader.core.fileGenerations().keys)
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
                // Consistent: every file the leader knows is open, at the generation of the cut.
                return (cutLSN, files.map { file in (path: file.path, handle: opened[file.path]!.handle, size: file.size) })
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
