import BrokerReplicationTesting
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Producers appending records `"<producer>:<sequence>:<padding>\n"`, each to files of its
/// own, remembering every record's LSN, file and offset: so a test can tell exactly which
/// bytes a follower must hold through any LSN.
struct Workload: Sendable {
    struct Written: Sendable {
        var lsn: UInt64
        var path: String
        var offset: Int
        var bytes: [UInt8]
    }

    /// In LSN order.
    var written: [Written]
    var records: Int { written.count }
    var totalBytes: Int { written.reduce(0) { $0 + $1.bytes.count } }
    var lastLSN: UInt64 { written.last?.lsn ?? 0 }

    /// Runs `producers` tasks of `records` appends each to `<prefix(producer)>/segment-<n>`,
    /// pausing 5 ms every 500 records, then flushes. `after`: an earlier workload whose files
    /// this one continues.
    static func run(
        _ leader: ReplicationLeader, producers: Int, records: Int, prefix: @escaping @Sendable (Int) -> String, after earlier: Workload? = nil
    ) async throws -> Workload {
        var sizes: [String: Int] = [:]
        for record in earlier?.written ?? [] { sizes[record.path] = record.offset + record.bytes.count }
        let startSizes = sizes
        let all = try await withThrowingTaskGroup(of: [Written].self) { group in
            for producer in 0..<producers {
                group.addTask {
                    var written: [Written] = []
                    var sizes = startSizes
                    for sequence in 0..<records {
                        let path = "\(prefix(producer))/segment-\(sequence / 5_000)"
                        let bytes = Array("\(producer):\(sequence):\(String(repeating: "x", count: sequence % 97))\n".utf8)
                        let lsn = try await leader.append(to: path, bytes: ByteBuffer(bytes: bytes))
                        written.append(Written(lsn: lsn, path: path, offset: sizes[path, default: 0], bytes: bytes))
                        sizes[path, default: 0] += bytes.count
                        if sequence % 500 == 499 { try await Task.sleep(for: .milliseconds(5)) }
                    }
                    return written
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        leader.flush()
        return Workload(written: ((earlier?.written ?? []) + all).sorted { $0.lsn < $1.lsn })
    }

    /// The files as the leader had them right after LSN `lsn` (only the paths written so far).
    func files(through lsn: UInt64) -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for record in written where record.lsn <= lsn {
            files[record.path, default: []] += record.bytes
        }
        return files
    }

    /// The highest LSN through which `directory` holds every record (its files may hold more
    /// bytes beyond it: applied, not yet durable).
    func persistedThrough(in directory: String) -> UInt64 {
        var contents: [String: [UInt8]] = [:]
        var persisted: UInt64 = 0
        for record in written {
            if contents[record.path] == nil {
                contents[record.path] = (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + record.path)))) ?? []
            }
            let file = contents[record.path]!
            let end = record.offset + record.bytes.count
            guard file.count >= end, file[record.offset..<end].elementsEqual(record.bytes) else { return persisted }
            persisted = record.lsn
        }
        return persisted
    }

    /// `directory` holds exactly these records and nothing else.
    func expectExactly(in directory: String) throws {
        let expected = files(through: .max).mapValues { Data($0) }
        let actual = try ReplicationTestCluster.files(under: directory)
        #expect(actual.keys.sorted() == expected.keys.sorted(), "\(directory) holds other files")
        for (path, bytes) in expected where actual[path] != bytes {
            Issue.record("\(directory)/\(path): \(actual[path]?.count ?? -1) bytes, expected \(bytes.count)")
        }
    }
}
