import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The follower's record applier against real directories: appends, replaces and deletes,
/// replays, gaps, and symlinks that would lead outside the data directory.
@Suite("Record applier")
struct RecordApplierTests {
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
}
