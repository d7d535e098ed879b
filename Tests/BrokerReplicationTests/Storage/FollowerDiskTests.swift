import Foundation
import LZ4
import NIOCore
import Testing

@testable import BrokerReplication

/// The follower's disk side against real directories: its position file, applying records,
/// and receiving a full sync.
@Suite("FollowerDiskTests")
struct FollowerDiskTests {
    // MARK: Position file

    @Test func stateFileStartsAtNoneAndRoundTrips() throws {
        try withTemporaryRoot { root in
            let directory = try DataDirectory(path: root.appendingPathComponent("data").path)
            let stateFile = try FollowerStateFile(directory: directory)
            #expect(stateFile.load() == .none)

            let position = FollowerPosition(epoch: 7, lastDurableLSN: 0x0102_0304_0506_0708)
            try stateFile.store(position, durable: true)
            #expect(stateFile.load() == position)
            #expect(try FollowerStateFile(directory: directory).load() == position, "a reopened file reads the same")

            let later = FollowerPosition(epoch: 8, lastDurableLSN: 1)
            try stateFile.store(later, durable: false)
            #expect(stateFile.load() == later)
            let bytes = try contents(root.appendingPathComponent("data/.brpl/follower-state"))
            #expect(bytes.count == 24, "overwritten in place, never grown")
            #expect(bytes.suffix(4) == [0, 0, 0, 0])
        }
    }

    enum StateDamage: String, CaseIterable, Sendable {
        case empty, short, flippedEpochBit, flippedLSNBit, flippedChecksumBit
    }

    @Test(arguments: StateDamage.allCases)
    func damagedStateFileReadsAsNone(damage: StateDamage) throws {
        try withTemporaryRoot { root in
            let directory = try DataDirectory(path: root.appendingPathComponent("data").path)
            try FollowerStateFile(directory: directory).store(FollowerPosition(epoch: 3, lastDurableLSN: 99), durable: true)
            let file = root.appendingPathComponent("data/.brpl/follower-state")
            var bytes = try contents(file)
            switch damage {
            case .empty: bytes = []
            case .short: bytes = Array(bytes.prefix(20))
            case .flippedEpochBit: bytes[7] ^= 0x01
            case .flippedLSNBit: bytes[8] ^= 0x80
            case .flippedChecksumBit: bytes[19] ^= 0x10
            }
            try Data(bytes).write(to: file)
            #expect(try FollowerStateFile(directory: directory).load() == .none)
        }
    }

    // MARK: Applying records

    @Test func appliesAppendsReplacesAndDeletes() throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let directory = try DataDirectory(path: data.path)
            let applier = RecordApplier(directory: directory, durable: true)
            defer { applier.closeAll() }

            try applier.apply([
                append("queues/q1/segment.0001", 0, bytes(100, seed: 1)),
                append("queues/q1/segment.0001", 100, bytes(50, seed: 2)),
                append("definitions.json", 0, Array("{}".utf8)),
                replace("definitions.json", 0, Array("{\"queues\":[\"q1\"]}".utf8), .whole),
                append("queues/q2/segment.0001", 0, bytes(10, seed: 3)),
            ])
            #expect(try contents(data.appendingPathComponent("queues/q1/segment.0001")) == bytes(100, seed: 1) + bytes(50, seed: 2))
            #expect(try contents(data.appendingPathComponent("definitions.json")) == Array("{\"queues\":[\"q1\"]}".utf8))

            try applier.apply([
                append("definitions.json", 17, Array("\n".utf8)),
                delete("queues/q2/segment.0001"),
                delete("never/existed"),
                replace("fresh/file", 0, bytes(3, seed: 4), .whole),
            ])
            #expect(try contents(data.appendingPathComponent("definitions.json")) == Array("{\"queues\":[\"q1\"]}\n".utf8))
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("queues/q2").path), "emptied directory removed")
            #expect(try contents(data.appendingPathComponent("fresh/file")) == bytes(3, seed: 4))
            #expect(try directory.listFiles().map(\.path.string) == ["definitions.json", "fresh/file", "queues/q1/segment.0001"])
        }
    }

    @Test func multiChunkReplaceInstallsOnlyAtTheLastChunk() throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let directory = try DataDirectory(path: data.path)
            let target = data.appendingPathComponent("store/definitions")
            let old = bytes(500, seed: 9)
            let new = bytes(3000, seed: 10)

            let applier = RecordApplier(directory: directory, durable: true)
            try applier.apply([append("store/definitions", 0, old)])
            try applier.apply([
                replace("store/definitions", 0, Array(new[0..<1000]), .firstChunk),
                replace("store/definitions", 1000, Array(new[1000..<2000]), []),
            ])
            #expect(try contents(target) == old, "the old file stays until the last chunk")
            try directory.syncFileSystem()
            applier.closeAll()

            // A new session (after a restart) continues the replace from its temporary file.
            let resumed = RecordApplier(directory: directory, durable: true)
            defer { resumed.closeAll() }
            try resumed.apply([replace("store/definitions", 2000, Array(new[2000...]), .lastChunk)])
            #expect(try contents(target) == new)
            #expect(try directory.listFiles().map(\.path.string) == ["store/definitions"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent(".brpl/replace").path).isEmpty)
        }
    }

    @Test func replayingRecordsLeavesIdenticalFiles() throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let directory = try DataDirectory(path: data.path)
            let replaced = bytes(2500, seed: 20)
            let records: [ReplicationRecord] = [
                append("a/segment", 0, bytes(1000, seed: 21)),
                append("a/segment", 1000, bytes(1000, seed: 22)),
                append("b/segment", 0, bytes(10, seed: 23)),
                replace("c/definitions", 0, Array(replaced[0..<1000]), .firstChunk),
                replace("c/definitions", 1000, Array(replaced[1000..<2000]), []),
                replace("c/definitions", 2000, Array(replaced[2000...]), .lastChunk),
                append("a/segment", 2000, bytes(7, seed: 24)),
                delete("b/segment"),
                append("b/segment", 0, bytes(5, seed: 25)),
            ]
            let applier = RecordApplier(directory: directory, durable: true)
            try applier.apply(records)
            let once = try snapshot(data)
            #expect(once.keys.sorted() == ["a/segment", "b/segment", "c/definitions"])
            #expect(once["a/segment"] == bytes(1000, seed: 21) + bytes(1000, seed: 22) + bytes(7, seed: 24))
            #expect(once["c/definitions"] == replaced)

            try applier.apply(records)
            #expect(try snapshot(data) == once, "the same session replays")
            applier.closeAll()

            for start in [1, 2, 3, 6, 7] {
                let restarted = RecordApplier(directory: directory, durable: true)
                try restarted.apply(Array(records[start...]))
                restarted.closeAll()
                #expect(try snapshot(data) == once, "a new session replays from record \(start)")
            }

            // Replaying a prefix leaves each file as the leader had it at that LSN: bytes written
            // by later records that were never acked are cut off.
            let rewound = RecordApplier(directory: directory, durable: true)
            try rewound.apply(Array(records[0...1]))
            rewound.closeAll()
            #expect(try contents(data.appendingPathComponent("a/segment")) == bytes(1000, seed: 21) + bytes(1000, seed: 22))
            try RecordApplier(directory: directory, durable: true).apply(Array(records[2...]))
            #expect(try snapshot(data) == once)

            // A known limit: once the last chunk renamed the temporary file into place, a
            // replay from a middle chunk finds no temporary file and asks for a resync
            // rather than guess which bytes the path holds.
            let restarted = RecordApplier(directory: directory, durable: true)
            #expect(isInconsistent(#expect(throws: ApplyError.self) { try restarted.apply(Array(records[4...])) }))
            #expect(try snapshot(data) == once, "and it changed nothing")
        }
    }

    @Test func appendWithAGapIsInconsistent() throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let directory = try DataDirectory(path: data.path)
            let applier = RecordApplier(directory: directory, durable: false)
            try applier.apply([append("segment", 0, bytes(10, seed: 1))])
            let error = #expect(throws: ApplyError.self) {
                try applier.apply([append("segment", 11, bytes(10, seed: 2))])
            }
            #expect(isInconsistent(error))
            #expect(error?.description.contains("records are missing") == true)
            #expect(try contents(data.appendingPathComponent("segment")) == bytes(10, seed: 1), "nothing written")

            let fresh = RecordApplier(directory: directory, durable: false)
            #expect(isInconsistent(#expect(throws: ApplyError.self) { try fresh.apply([append("other", 5, [1])]) }))
        }
    }

    @Test(arguments: [ReplicationRecord.ReplaceFlags(), .lastChunk])
    func replaceChunkWithoutItsFirstChunkIsInconsistent(flags: ReplicationRecord.ReplaceFlags) throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let directory = try DataDirectory(path: data.path)
            let applier = RecordApplier(directory: directory, durable: true)
            try applier.apply([append("definitions", 0, bytes(10, seed: 1))])
            let error = #expect(throws: ApplyError.self) {
                try applier.apply([replace("definitions", 0, bytes(10, seed: 2), flags)])
            }
            #expect(isInconsistent(error))
            #expect(try contents(data.appendingPathComponent("definitions")) == bytes(10, seed: 1))

            // A chunk beyond what arrived of a replace is a gap too.
            try applier.apply([replace("definitions", 0, bytes(10, seed: 3), .firstChunk)])
            #expect(isInconsistent(#expect(throws: ApplyError.self) {
                try applier.apply([replace("definitions", 11, bytes(10, seed: 4), flags)])
            }))
        }
    }

    enum SymlinkAttack: String, CaseIterable, Sendable {
        case appendThroughDirectoryLink, replaceThroughDirectoryLink, deleteThroughDirectoryLink, appendToFileLink
    }

    @Test(arguments: SymlinkAttack.allCases)
    func symlinkInTheDataDirectoryIsRefusedAndNothingIsWrittenOutside(attack: SymlinkAttack) throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let outside = root.appendingPathComponent("outside")
            try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
            let victim = outside.appendingPathComponent("victim")
            try Data(bytes(16, seed: 5)).write(to: victim)
            let directory = try DataDirectory(path: data.path)
            try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("link").path, withDestinationPath: outside.path)
            try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("file-link").path, withDestinationPath: victim.path)

            let record: ReplicationRecord = switch attack {
            case .appendThroughDirectoryLink: append("link/new", 0, bytes(8, seed: 6))
            case .replaceThroughDirectoryLink: replace("link/new", 0, bytes(8, seed: 6), .whole)
            case .deleteThroughDirectoryLink: delete("link/victim")
            case .appendToFileLink: append("file-link", 16, bytes(8, seed: 6))
            }
            for durable in [true, false] {
                let applier = RecordApplier(directory: directory, durable: durable)
                let error = #expect(throws: ApplyError.self) { try applier.apply([record]) }
                guard case .storage = error else {
                    Issue.record("expected a storage error, got \(String(describing: error))")
                    return
                }
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path) == ["victim"])
            #expect(try contents(victim) == bytes(16, seed: 5))
        }
    }

    @Test func contiguousAppendsToOneFileInABatchAreOneWrite() throws {
        try withTemporaryRoot { root in
            let data = root.appendingPathComponent("data")
            let directory = try DataDirectory(path: data.path)
            let applier = RecordApplier(directory: directory, durable: true)
            defer { applier.closeAll() }
            // A broker's batch: 430 records of 150 bytes interleaved over 20 segment files.
            var records: [ReplicationRecord] = []
            var expected: [String: [UInt8]] = [:]
            for index in 0..<430 {
                let path = "queues/q\(index % 20)/segment"
                let record = bytes(150, seed: UInt64(index))
                records.append(append(path, UInt64(expected[path, default: []].count), record))
                expected[path, default: []] += record
            }
            try applier.apply(records)
            #expect(applier.appendWrites == 20, "one write per file per batch")
            for (path, bytes) in expected { #expect(try contents(data.appendingPathComponent(path)) == bytes) }

            // A run broken by a replayed offset, a replace and a delete still applies in order.
            try applier.apply([
                append("queues/q0/segment", UInt64(expected["queues/q0/segment"]!.count), [1, 2, 3]),
                append("queues/q0/segment", 0, [9]),
                append("queues/q0/segment", 1, [8]),
                append("queues/q1/segment", UInt64(expected["queues/q1/segment"]!.count), [4]),
                replace("queues/q1/segment", 0, [5, 5], .whole),
                append("queues/q1/segment", 2, [6]),
                append("queues/q2/segment", UInt64(expected["queues/q2/segment"]!.count), [7]),
                delete("queues/q2/segment"),
            ])
            #expect(try contents(data.appendingPathComponent("queues/q0/segment")) == [9, 8])
            #expect(try contents(data.appendingPathComponent("queues/q1/segment")) == [5, 5, 6])
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("queues/q2/segment").path))
            try directory.syncFileSystem()
        }
    }

    // MARK: Full sync

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
            #expect(Set(requested.map { manifest[Int($0)].path.string }) == [
                "queues/q1/segment.0001", "queues/q1/segment.0002", "queues/q2/meta", "definitions.json", "deep/a/b/c/file",
            ])
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent("old").path), "extras and their directories go")
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent("queues/q1/segment.0000").path))

            for index in requested {
                for chunk in try chunks(of: leaderFiles[manifest[Int(index)].path.string]!, index: index) {
                    try receiver.receive(chunk)
                }
            }
            try receiver.finish()

            #expect(try snapshot(followerURL) == leaderFiles, "exactly the leader's files, byte for byte")
            #expect(try snapshot(followerURL).keys.sorted() == snapshot(leaderURL).keys.sorted())
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent(".brpl/sync").path))
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent(".brpl/replace").path))

            // Nothing differs any more: a second sync requests nothing.
            func resync(_ directory: DataDirectory) throws -> [UInt32] {
                var again = FullSyncReceiver(directory: directory, begin: SyncBegin(cutLSN: 1234, fileCount: UInt32(manifest.count)), limits: .default, durable: false)
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
            var receiver = FullSyncReceiver(directory: follower, begin: SyncBegin(cutLSN: 9, fileCount: 2), limits: limits, durable: true)
            try receiver.addManifest(firstIndex: 0, entries: manifest)
            let requested = try receiver.planRequests()
            #expect(requested == [0], "only big (index 0) differs")
            var pieces = try chunks(of: file, index: 0)
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
                pieces = try chunks(of: damaged, index: 0)
                for chunk in pieces { feed(chunk) }
                #expect(failure == nil, "sizes fit; only the checksum can tell")
                do throws(ApplyError) { try receiver.finish() } catch { failure = error }
            case .missingLastChunk:
                feed(pieces[0])
                feed(pieces[1])
                do throws(ApplyError) { try receiver.finish() } catch { failure = error }
            }
            #expect(isInconsistent(failure), "\(bad) must be refused, got \(String(describing: failure))")
            #expect(!FileManager.default.fileExists(atPath: followerURL.appendingPathComponent("big").path), "nothing installed")
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
                SyncManifestEntry(path: replicated(path), size: 1, checksum: 0)
            }
            var receiver = FullSyncReceiver(directory: follower, begin: SyncBegin(cutLSN: 1, fileCount: 3), limits: .default, durable: false)
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

    /// The leader's side of a manifest: every file with its size and CRC32C.
    private func makeManifest(_ leader: DataDirectory) throws -> [SyncManifestEntry] {
        try leader.listFiles().map { file in
            let handle = try #require(try leader.openForReading(file.path))
            return SyncManifestEntry(path: file.path, size: UInt64(file.size), checksum: try handle.checksum(length: file.size))
        }
    }

    /// The leader's side of sending a file: 64 KiB pieces, each LZ4-compressed.
    private func chunks(of file: [UInt8], index: UInt32) throws -> [SyncChunk] {
        try stride(from: 0, to: file.count, by: 64 * 1024).map { offset in
            let piece = Array(file[offset..<min(offset + 64 * 1024, file.count)])
            return SyncChunk(fileIndex: index, offset: UInt64(offset), uncompressedBytes: UInt32(piece.count), compressed: try compressed(piece))
        }
    }

    private func compressed(_ bytes: [UInt8]) throws -> ByteBuffer {
        ByteBuffer(bytes: try LZ4BlockCompressor().compress(bytes))
    }
}

// MARK: Fixtures

private func replicated(_ path: String) -> ReplicatedPath { try! ReplicatedPath(path) }

private func append(_ path: String, _ offset: UInt64, _ bytes: [UInt8]) -> ReplicationRecord {
    .append(path: replicated(path), offset: offset, bytes: ByteBuffer(bytes: bytes))
}

private func replace(_ path: String, _ offset: UInt64, _ bytes: [UInt8], _ flags: ReplicationRecord.ReplaceFlags) -> ReplicationRecord {
    .replace(path: replicated(path), offset: offset, chunk: ByteBuffer(bytes: bytes), flags: flags)
}

private func delete(_ path: String) -> ReplicationRecord {
    .delete(path: replicated(path))
}

private func isInconsistent(_ error: ApplyError?) -> Bool {
    if case .inconsistent? = error { true } else { false }
}

/// Deterministic bytes that LZ4 can still compress a little.
private func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { index in
        if index % 7 == 0 { return UInt8(truncatingIfNeeded: index) }
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// Runs `body` with a fresh directory that is removed afterwards.
private func withTemporaryRoot(_ body: (URL) throws -> Void) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("follower-disk-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    try body(root)
}

private func contents(_ url: URL) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: url))
}

private func write(_ files: [String: [UInt8]], under root: URL) throws {
    for (path, bytes) in files {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }
}

/// Every file below `root` except `.brpl`, by relative path, with its bytes.
private func snapshot(_ root: URL) throws -> [String: [UInt8]] {
    let directory = try DataDirectory(path: root.path)
    var files: [String: [UInt8]] = [:]
    for file in try directory.listFiles() {
        files[file.path.string] = try contents(root.appendingPathComponent(file.path.string))
    }
    return files
}
