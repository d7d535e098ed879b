import ArgumentParser
import BrokerMessageCorpus
import BrokerReplication
import Foundation
import Logging
import NIOCore

/// Measures what a follower's catch-up costs: a full sync of a fresh follower against
/// `rsync -a --fsync` from an rsync daemon over loopback on the same directory, alternated in
/// one run; and a returning follower's catch-up after a leader restart with appends spread
/// over the files, after a crash (no epoch end recorded) and after a graceful stop.
@main
struct CatchUpBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catch-up",
        abstract: "Measure full-sync throughput against rsync, and the bytes a returning follower's catch-up moves.",
        discussion: """
            The leader and the follower run in this process over 127.0.0.1; rsync runs as a \
            daemon and a client process (apt-get install rsync). Files hold broker-like JSON \
            events of about 150 bytes (or random bytes with --incompressible). Everything is \
            written under a temporary directory that is removed at the end.
            """
    )

    @Option(name: .customLong("directory-bytes"), help: "Bytes in the leader's directory.")
    var directoryBytes: Int = 1 << 30

    @Option(help: "Files the directory is spread over.")
    var files: Int = 16

    @Option(name: .customLong("append-bytes"), help: "Bytes appended across the files while the follower is away.")
    var appendBytes: Int = 15_000_000

    @Option(help: "Full-sync rounds, each one of ours and one of rsync.")
    var rounds: Int = 2

    @Flag(name: .customLong("skip-rsync"), help: "Do not run rsync (when it is not installed).")
    var skipRsync = false

    @Flag(help: "Fill the files with random bytes, which LZ4 cannot compress, instead of JSON events.")
    var incompressible = false

    @Option(help: ArgumentHelp("Write the results as JSON to this file.", valueName: "path"))
    var json: String?

    func validate() throws {
        guard (1 << 20...1 << 36).contains(directoryBytes) else { throw ValidationError("--directory-bytes must be 1 MiB...64 GiB") }
        guard (1...100_000).contains(files) else { throw ValidationError("--files must be 1...100000") }
        guard (files...1 << 32).contains(appendBytes) else { throw ValidationError("--append-bytes must be at least --files") }
        guard (1...10).contains(rounds) else { throw ValidationError("--rounds must be 1...10") }
    }

    struct Results: Codable {
        var directoryBytes: Int
        var files: Int
        var fullSyncMBPerSecond: [Double] = []
        var rsyncMBPerSecond: [Double] = []
        var fullSyncToRsync: Double?
        var catchUps: [CatchUp] = []
    }

    struct CatchUp: Codable {
        var restart: String
        var appendedBytes: Int
        var movedBytes: Int
        var ratio: Double
        var seconds: Double
        var epochResume: Bool
    }

    func run() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("catch-up-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bench = Bench(root: root, incompressible: incompressible)
        print("writing \(directoryBytes) bytes over \(files) files ...")
        try bench.writeDirectory(bytes: directoryBytes, files: files)
        // A broker's files are long on disk when a follower joins: flush them now, so neither
        // side pays for this benchmark's own writes.
        sync()
        var results = Results(directoryBytes: directoryBytes, files: files)

        let rsync = skipRsync ? nil : try RsyncDaemon.start(serving: bench.leaderDirectory, root: root)
        defer { rsync?.stop() }
        for round in 1...rounds {
            let ours = try await bench.fullSync(into: "fresh-\(round)", keep: round == rounds)
            results.fullSyncMBPerSecond.append(Double(directoryBytes) / ours / 1e6)
            print(String(format: "round %d  full sync   %6.2f s  %7.1f MB/s", round, ours, Double(directoryBytes) / ours / 1e6))
            if let rsync {
                let theirs = try rsync.copy(into: root + "/rsync-\(round)")
                results.rsyncMBPerSecond.append(Double(directoryBytes) / theirs / 1e6)
                print(String(format: "round %d  rsync       %6.2f s  %7.1f MB/s", round, theirs, Double(directoryBytes) / theirs / 1e6))
                try? FileManager.default.removeItem(atPath: root + "/rsync-\(round)")
            }
        }
        if !results.rsyncMBPerSecond.isEmpty {
            results.fullSyncToRsync = results.fullSyncMBPerSecond.reduce(0, +) / results.rsyncMBPerSecond.reduce(0, +)
            print(String(format: "full sync / rsync: %.2f (mean of %d rounds each)", results.fullSyncToRsync!, rounds))
        }

        for crash in [true, false] {
            let catchUp = try await bench.catchUp(follower: "fresh-\(rounds)", appendBytes: appendBytes, files: files, crash: crash)
            results.catchUps.append(catchUp)
            print(String(
                format: "catch-up after a %@ restart: appended %d bytes, moved %d bytes (%.2fx), %.2f s%@",
                catchUp.restart, catchUp.appendedBytes, catchUp.movedBytes, catchUp.ratio, catchUp.seconds,
                catchUp.epochResume ? ", resumed across epochs" : ", full sync of what changed"
            ))
        }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: json))
        }
    }
}
