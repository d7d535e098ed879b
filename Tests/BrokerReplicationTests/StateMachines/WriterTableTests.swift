import Foundation
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The leader's writer table closes idle handles beyond its bound, never one a write is using,
/// and forgets the writers it closed, so that it holds what is open now, not every file ever written.
@Suite("Writer table")
struct WriterTableTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-writers-\(UUID().uuidString.prefix(8))").path

    func directory() throws -> DataDirectory {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return try DataDirectory(path: root)
    }

    /// Writes `bytes` at the file's end the way an append does: checked out of the table, under
    /// the writer's lock. Returns the writer.
    @discardableResult
    static func append(_ bytes: [UInt8], to path: String, in table: WriterTable, directory: DataDirectory) async throws -> FileWriter {
        try await table.withWriter(for: try ReplicatedPath(path)) { writer in
            _ = try await writer.lock.withLock(before: .now + .seconds(60)) {
                let (handle, size) = try writer.open(in: directory)
                try bytes.withUnsafeBytes { buffer in try handle.write(buffer, at: size) }
                writer.setSize(size + bytes.count)
            }
            return writer
        }
    }

    @Test func idleHandlesBeyondTheBoundAreClosedLeastRecentlyUsedFirst() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 8)
        var writers: [FileWriter] = []
        for index in 0..<100 {
            writers.append(try await Self.append(Array("\(index)".utf8), to: "f\(index)", in: table, directory: directory))
            #expect(table.openFileCount <= 8, "after \(index + 1) files: \(table.openFileCount) open")
            #expect(table.count <= 8, "after \(index + 1) files the table keeps \(table.count) writers")
        }
        #expect(writers.filter(\.hasOpenHandle).count <= 8)
        #expect(writers.last!.hasOpenHandle, "the most recently used writer keeps its handle")
        #expect(!writers.first!.hasOpenHandle, "the least recently used one does not")
        // A forgotten writer's file goes on at its end.
        try await Self.append(Array(",again".utf8), to: "f0", in: table, directory: directory)
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/f0")) == Data("0,again".utf8))
    }

    /// A delete leaves its writer without a descriptor: the table forgets it at once, so a
    /// broker that rolls and deletes segments does not grow it.
    @Test func aWriterLeftWithoutADescriptorIsForgotten() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 1000)
        for index in 0..<50 {
            try await Self.append([1, 2, 3], to: "segment\(index)", in: table, directory: directory)
            try await table.withWriter(for: try ReplicatedPath("segment\(index)")) { writer in
                _ = try await writer.lock.withLock(before: .now + .seconds(60)) {
                    try directory.delete(try ReplicatedPath("segment\(index)"), durable: false)
                    writer.setHandle(nil, size: 0)
                }
            }
        }
        #expect(table.count == 0, "\(table.count) writers kept for 50 deleted files")
        #expect(table.openFileCount == 0)
    }

    /// Forgetting writers must never let two writers for one path in: concurrent appends to one
    /// file, while other files churn the table, all land, one after the other.
    @Test func appendsToOneFileStaySerialisedWhileTheTableForgetsWriters() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 2)
        let appendsPerTask = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<4 {
                group.addTask {
                    for index in 0..<appendsPerTask {
                        try await Self.append([UInt8(task)], to: "shared", in: table, directory: directory)
                        try await Self.append([1], to: "churn\(task)-\(index % 7)", in: table, directory: directory)
                    }
                }
            }
            try await group.waitForAll()
        }
        let shared = try Data(contentsOf: URL(fileURLWithPath: root + "/shared"))
        #expect(shared.count == 4 * appendsPerTask, "appends overwrote each other: \(shared.count) bytes")
        for task in 0..<4 {
            #expect(shared.filter { $0 == UInt8(task) }.count == appendsPerTask)
        }
        #expect(table.count <= 2 + 4, "the bound, plus writers in use: \(table.count)")
    }

    @Test func aHandleIsNeverClosedWhileAWriteHoldsItsLock() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 4)
        let holding = AsyncStream<FileWriter>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let write = Task {
            try await table.withWriter(for: try ReplicatedPath("busy")) { busy in
                _ = try await busy.lock.withLock(before: .now + .seconds(60)) {
                    _ = try busy.open(in: directory)
                    holding.continuation.yield(busy)
                    for await _ in release.stream { break }
                    // The handle is still the writer's: the write goes through it.
                    let (handle, size) = try busy.open(in: directory)
                    try Array("held".utf8).withUnsafeBytes { buffer in try handle.write(buffer, at: size) }
                    busy.setSize(size + 4)
                }
            }
        }
        var busy: FileWriter?
        for await writer in holding.stream {
            busy = writer
            break
        }
        let held = try #require(busy)
        // Fifty other files while the busy writer is the least recently used of all.
        for index in 0..<50 {
            try await Self.append([1], to: "other\(index)", in: table, directory: directory)
            #expect(held.hasOpenHandle, "closed while its lock was held, after \(index + 1) other files")
        }
        #expect(table.openFileCount <= 5, "the bound, plus the writer in use")
        release.continuation.yield()
        try await write.value
        // Idle now: the next files close it.
        for index in 50..<60 {
            try await Self.append([1], to: "other\(index)", in: table, directory: directory)
        }
        #expect(!held.hasOpenHandle)
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/busy")) == Data("held".utf8))
    }

    /// After a failed truncate the writer alone knows where the file ends: closed to make room,
    /// it is kept, and reopens at the size it had, not at whatever size the file shows.
    @Test func aWriterWhoseTruncateFailedIsKeptAndReopensAtItsSize() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 1)
        let first = try await Self.append(Array("one,".utf8), to: "first", in: table, directory: directory)
        first.truncateFailed()
        try await Self.append(Array("x".utf8), to: "second", in: table, directory: directory)
        #expect(!first.hasOpenHandle)
        #expect(table.count == 2, "the writer whose truncate failed is kept")
        // Bytes past the writer's size (as the failed truncate left) are overwritten.
        try Data("one,GARBAGE".utf8).write(to: URL(fileURLWithPath: root + "/first"))
        let again = try await Self.append(Array("two".utf8), to: "first", in: table, directory: directory)
        #expect(again === first)
        #expect(first.hasOpenHandle)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: root + "/first"))
        #expect(String(decoding: bytes.prefix(7), as: UTF8.self) == "one,two")
    }
}
