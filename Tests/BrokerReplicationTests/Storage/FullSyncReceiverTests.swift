import Foundation
import LZ4
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The follower's side of a full sync against real directories: it converges on the leader's
/// files, and refuses bad chunks and bad manifests.
@Suite("Full-sync receiver")
struct FullSyncReceiverTests {
    @Test func fullSyncConvergesOnTheLeaderFiles() throws {
        try withTemporaryRoot { root in
            let leaderURL = root.appendingPathComponent("leader")
            let followerURL = root.appendingPathComponent("follower")
            let leaderFiles: [String: [UInt8]] = [
                "same.dat": bytes(1000, seed: 1),
                "empty-same": [],
                "queues/q1/segment.0001": bytes(200_000, seed: 2),
                "queues/q1/segment.0002": bytes(70_000, seed: 3),
                "queues/q2/meta": [],
                "definitions.json": bytes(5000, seed: 4),
                "deep/a/b/c/file": bytes(65_536, seed: 5),
            ]
            var followerFiles: [String: [UInt8]] = [
                "same.dat": bytes(1000, seed: 1),
                "empty-same": [],
                "queues/q1/segment.0001": bytes(200_000, seed: 99),  // same size, other bytes
                "queues/q1/segment.0002": Array(bytes(70_000, seed: 3).prefix(30_000)),  // behind
                "queues/q1/segment.0000": bytes(300, seed: 6),  // extra
                "old/stale/segment": bytes(300, seed: 7),  // extra, in directories of its own
            ]
            followerFiles[".brpl/sync/77"] = bytes(10, seed: 8)  // left by a crashed sync
            followerFiles[".brpl/replace/0123abcd"] = bytes(10, seed: 9)  // a replace the sync supersedes
            try write(leaderFiles, under: leaderURL)
            try write(followerFiles, under: followerURL)

            let leader = try DataDirectory(path: leaderURL.path)
            let follower = try DataDirectory(path: followerURL.path)
            let manifest = try makeManifest(leader)
            #expect(manifest.count == leaderFiles.count)

            var receiver = FullSyncReceiver(
                directory: follower,
                index: ChunkIndex(),
                begin: SyncBegin(cutLSN: 1234, fileCount: UInt32(manifest.count)),
                limits: .default,
                durable: true
            )
            #expect(receiver.cutLSN == 1234)
            try receiver.addManifest(firstIndex: 0, entries: Array(manifest[0..<3]))
            #expect(!receiver.manifestComplete)
            try receiver.addManifest(firstIndex: 3, entries: Array(manifest[3...]))
            #expect(receiver.manifestComplete)

            let requested = try receiver.planRequests()
            #expect(Set(requested.map { manifest[Int($0.index)].path.string }) == [
                "queues/q1/segment.0001", "queues/q1/segment.0002", "queues/q2/meta", "definitions.json", "deep/a/b/c/file",
            ])
            let behind = try #require(requested.first { manifest[Int($0.index)].path.string == "queues/q1/segment.0002" })
            #expect(behind.offset == 30_000, "a copy that is a prefix gets only the tail")
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent("old").path), "extras and their directories go")
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent("queues/q1/segment.0000").path))

            for request in requested {
                for chunk in try Self.chunks(of: leaderFiles[manifest[Int(request.index)].path.string]!, answering: request) {
                    try receiver.receive(chunk)
                }
            }
            try receiver.finish()

            #expect(try snapshot(followerURL) == leaderFiles, "exactly the leader's files, byte for byte")
            #expect(try snapshot(followerURL).keys.sorted() == snapshot(leaderURL).keys.sorted())
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent(".brpl/sync").path))
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent(".brpl/replace").path))

            // Nothing differs any more: a second sync requests nothing.
            func resync(_ directory: DataDirectory) throws -> [SyncRequest.File] {
                var again = FullSyncReceiver(directory: directory, index: ChunkIndex(), begin: SyncBegin(cutLSN: 1234, fileCount: UInt32(manifest.count)), limits: .default, durable: false)
                try again.addManifest(firstIndex: 0, entries: manifest)
                let requested = try again.planRequests()
                try again.finish()
                return requested
            }
            #expect(try resync(DataDirectory(path: followerURL.path)).isEmpty)
            #expect(try snapshot(followerURL) == leaderFiles)
            // The same DataDirectory instance lists again (it once shared a read position and found nothing).
            #expect(try resync(follower).isEmpty)
        }
    }

    enum BadChunk: String, CaseIterable, Sendable {
        case unrequestedIndex, indexBeyondTheManifest, wrongOffset, repeatedChunk, declaredSizeAboveLimit, runsPastTheFile
        case corruptCompression, corruptedFile, missingLastChunk
    }

    @Test(arguments: BadChunk.allCases)
    func fullSyncRefusesBadChunks(bad: BadChunk) throws {
        try withTemporaryRoot { root in
            let leaderURL = root.appendingPathComponent("leader")
            let followerURL = root.appendingPathComponent("follower")
            let file = bytes(150_000, seed: 1)
            try write(["big": file, "same": bytes(10, seed: 2)], under: leaderURL)
            try write(["same": bytes(10, seed: 2)], under: followerURL)
            let manifest = try makeManifest(try DataDirectory(path: leaderURL.path))
            let follower = try DataDirectory(path: followerURL.path)
            let limits = WireLimits(maximumBatchBytes: 64 * 1024)
            var receiver = FullSyncReceiver(directory: follower, index: ChunkIndex(), begin: SyncBegin(cutLSN: 9, fileCount: 2), limits: limits, durable: true)
            try receiver.addManifest(firstIndex: 0, entries: manifest)
            let requested = try receiver.planRequests()
            #expect(requested == [SyncRequest.File(index: 0, offset: 0, prefixChecksum: 0)], "only big (index 0) differs")
            var pieces = try Self.chunks(of: file, answering: requested[0])
            #expect(pieces.count == 3)

            var failure: ApplyError?
            func feed(_ chunk: SyncChunk) {
                do throws(ApplyError) { try receiver.receive(chunk) } catch { failure = error }
            }
            switch bad {
            case .unrequestedIndex:
                feed(SyncChunk(fileIndex: 1, offset: 0, uncompressedBytes: 10, compressed: try compressed(bytes(10, seed: 2))))
            case .indexBeyondTheManifest:
                feed(SyncChunk(fileIndex: 2, offset: 0, uncompressedBytes: 10, compressed: try compressed(bytes(10, seed: 2))))
            case .wrongOffset:
                feed(pieces[1])
            case .repeatedChunk:
                feed(pieces[0])
                feed(pieces[0])
            case .declaredSizeAboveLimit:
                feed(SyncChunk(fileIndex: 0, offset: 0, uncompressedBytes: UInt32.max, compressed: pieces[0].compressed))
            case .runsPastTheFile:
                feed(pieces[0])
                feed(pieces[1])
                let tail = Array(file[131_072...]) + [0]
                feed(SyncChunk(fileIndex: 0, offset: 131_072, uncompressedBytes: UInt32(tail.count), compressed: try compressed(tail)))
            case .corruptCompression:
                feed(SyncChunk(fileIndex: 0, offset: 0, uncompressedBytes: 65_536, compressed: ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])))
            case .corruptedFile:
                var damaged = file
                damaged[100_000] ^= 0x01
                pieces = try Self.chunks(of: damaged, answering: requested[0])
                feed(pieces[0])
                feed(pieces[1])
                #expect(failure == nil, "sizes fit; only the checksum can tell, once the chunk is complete")
                feed(pieces[2])
            case .missingLastChunk:
                feed(pieces[0])
                feed(pieces[1])
                do throws(ApplyError) { try receiver.finish() } catch { failure = error }
            }
            #expect(isInconsistent(failure), "\(bad) must be refused, got \(String(describing: failure))")
            #expect(try contents(followerURL.appendingPathComponent("same")) == bytes(10, seed: 2))
        }
    }

    enum BadManifest: String, CaseIterable, Sendable {
        case gap, overlap, moreThanAnnounced, duplicatePath, fileAndDirectory, requestedEarly
    }

    @Test(arguments: BadManifest.allCases)
    func fullSyncRefusesABadManifest(bad: BadManifest) throws {
        try withTemporaryRoot { root in
            let follower = try DataDirectory(path: root.appendingPathComponent("follower").path)
            func entry(_ path: String) -> SyncManifestEntry {
                SyncManifestEntry(path: TestFrames.path(path), size: 1, chunkChecksums: [0])
            }
            var receiver = FullSyncReceiver(directory: follower, index: ChunkIndex(), begin: SyncBegin(cutLSN: 1, fileCount: 3), limits: .default, durable: false)
            var failure: ApplyError?
            func attempt(_ body: (inout FullSyncReceiver) throws(ApplyError) -> Void) {
                do throws(ApplyError) { try body(&receiver) } catch { failure = error }
            }
            switch bad {
            case .gap:
                attempt { r throws(ApplyError) in try r.addManifest(firstIndex: 1, entries: [entry("a")]) }
            case .overlap:
                attempt { r throws(ApplyError) in
                    try r.addManifest(firstIndex: 0, entries: [entry("a"), entry("b")])
                    try r.addManifest(firstIndex: 1, entries: [entry("c")])
                }
            case .moreThanAnnounced:
                attempt { r throws(ApplyError) in try r.addManifest(firstIndex: 0, entries: [entry("a"), entry("b"), entry("c"), entry("d")]) }
            case .duplicatePath:
                attempt { r throws(ApplyError) in try r.addManifest(firstIndex: 0, entries: [entry("a"), entry("b"), entry("a")]) }
            case .fileAndDirectory:
                attempt { r throws(ApplyError) in
                    try r.addManifest(firstIndex: 0, entries: [entry("a"), entry("a/b"), entry("c")])
                    _ = try r.planRequests()
                }
            case .requestedEarly:
                attempt { r throws(ApplyError) in
                    try r.addManifest(firstIndex: 0, entries: [entry("a")])
                    _ = try r.planRequests()
                }
            }
            #expect(isInconsistent(failure), "\(bad) must be refused, got \(String(describing: failure))")
        }
    }

    // MARK: Helpers

    /// The leader's side of a manifest: every file with its size and chunk checksums.
    static func makeManifest(_ leader: DataDirectory) throws -> [SyncManifestEntry] {
        try leader.listFiles().map { file in
            let handle = try #require(try leader.openForReading(file.path))
            let checksums = try (0..<SyncManifestEntry.chunkCount(forSize: UInt64(file.size))).map { chunk in
                let start = chunk * ChunkIndex.chunkBytes
                return try handle.checksum(from: start, length: min(ChunkIndex.chunkBytes, file.size - start))
            }
            return SyncManifestEntry(path: file.path, size: UInt64(file.size), chunkChecksums: checksums)
        }
    }

    private func makeManifest(_ leader: DataDirectory) throws -> [SyncManifestEntry] {
        try Self.makeManifest(leader)
    }

    /// The leader's side of answering a request: it checks the follower's partial chunk, then
    /// sends the rest of the file in 64 KiB pieces, each LZ4-compressed.
    static func chunks(of file: [UInt8], answering request: SyncRequest.File) throws -> [SyncChunk] {
        let offset = Int(request.offset)
        let chunkStart = offset - offset % ChunkIndex.chunkBytes
        let agrees = file[chunkStart..<offset].withUnsafeBytes { CRC32C.checksum($0) } == request.prefixChecksum
        let start = offset == chunkStart || agrees ? offset : chunkStart
        return try stride(from: start, to: file.count, by: 64 * 1024).map { piece in
            let bytes = Array(file[piece..<min(piece + 64 * 1024, file.count)])
            return SyncChunk(fileIndex: request.index, offset: UInt64(piece), uncompressedBytes: UInt32(bytes.count), compressed: ByteBuffer(bytes: try LZ4BlockCompressor().compress(bytes)))
        }
    }

    private func compressed(_ bytes: [UInt8]) throws -> ByteBuffer {
        ByteBuffer(bytes: try LZ4BlockCompressor().compress(bytes))
    }
}
