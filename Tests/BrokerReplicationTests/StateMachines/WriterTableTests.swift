import Foundation
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The leader's writer table closes idle handles beyond its bound, never one a write is using.
@Suite("Writer table")
struct WriterTableTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-writers-\(UUID().uuidString.prefix(8))").path

    func directory() throws -> DataDirectory {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return try DataDirectory(path: root)
    }

    /// Writes `bytes` at the writer's end the way an append does: under its lock.
    static func append(_ bytes: [UInt8], to writer: FileWriter, in directory: DataDirectory) async throws {
        _ = try await writer.lock.withLock(before: .now + .seconds(60)) {
            let (handle, size) = try writer.open(in: directory)
            try bytes.withUnsafeBytes { buffer in try handle.write(buffer, at: size) }
            writer.setSize(size + bytes.count)
        }
    }

    @Test func idleHandlesBeyondTheBoundAreClosedLeastRecentlyUsedFirst() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 8)
        var writers: [FileWriter] = []
        for index in 0..<100 {
            let writer = table.writer(for: try ReplicatedPath("f\(index)"))
            try await Self.append(Array("\(index)".utf8), to: writer, in: directory)
            writers.append(writer)
            #expect(table.openFileCount <= 8, "after \(index + 1) files: \(table.openFileCount) open")
        }
        #expect(writers.filter(\.hasOpenHandle).count <= 8)
        #expect(writers.last!.hasOpenHandle, "the most recently used writer keeps its handle")
        #expect(!writers.first!.hasOpenHandle, "the least recently used one does not")
    }

    @Test func aHandleIsNeverClosedWhileAWriteHoldsItsLock() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 4)
        let busy = table.writer(for: try ReplicatedPath("busy"))
        let holding = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let write = Task {
            _ = try await busy.lock.withLock(before: .now + .seconds(60)) {
                _ = try busy.open(in: directory)
                holding.continuation.yield()
                for await _ in release.stream { break }
                // The handle is still the writer's: the write goes through it.
                let (handle, size) = try busy.open(in: directory)
                try Array("held".utf8).withUnsafeBytes { buffer in try handle.write(buffer, at: size) }
                busy.setSize(size + 4)
            }
        }
        for await _ in holding.stream { break }
        // Fifty other files while the busy writer is the least recently used of all.
        for index in 0..<50 {
            try await Self.append([1], to: table.writer(for: try ReplicatedPath("other\(index)")), in: directory)
            #expect(busy.hasOpenHandle, "closed while its lock was held, after \(index + 1) other files")
        }
        #expect(table.openFileCount <= 5, "the bound, plus the writer in use")
        release.continuation.yield()
        try await write.value
        // Idle now: the next files close it.
        for index in 50..<60 {
            try await Self.append([1], to: table.writer(for: try ReplicatedPath("other\(index)")), in: directory)
        }
        #expect(!busy.hasOpenHandle)
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/busy")) == Data("held".utf8))
    }

    /// A handle closed to make room reopens at the size the writer had, as the open handle
    /// would have written: not at whatever size the file shows.
    @Test func aClosedWriterReopensAtTheSizeItHad() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = try directory()
        let table = WriterTable(maximumOpenFiles: 1)
        let first = table.writer(for: try ReplicatedPath("first"))
        try await Self.append(Array("one,".utf8), to: first, in: directory)
        try await Self.append(Array("x".utf8), to: table.writer(for: try ReplicatedPath("second")), in: directory)
        #expect(!first.hasOpenHandle)
        // Bytes past the writer's size (as a failed truncate could leave) are overwritten.
        try Data("one,GARBAGE".utf8).write(to: URL(fileURLWithPath: root + "/first"))
        try await Self.append(Array("two".utf8), to: table.writer(for: try ReplicatedPath("first")), in: directory)
        #expect(first.hasOpenHandle)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: root + "/first"))
        #expect(String(decoding: bytes.prefix(7), as: UTF8.self) == "one,two")
    }
}
