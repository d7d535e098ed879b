import BrokerMessageCorpus
import BrokerReplication
import Foundation
import Logging
import NIOCore

/// One leader directory and the followers that catch up from it, all in this process.
struct Bench: Sendable {
    let root: String
    /// Random bytes instead of events: what LZ4 cannot shrink.
    let incompressible: Bool
    let secret: SharedSecret
    let logger = Logger(label: "catch-up") { _ in SwiftLogNoOpLogHandler() }

    init(root: String, incompressible: Bool) {
        self.root = root
        self.incompressible = incompressible
        self.secret = try! SharedSecret(bytes: Array("catch-up benchmark shared secret".utf8))
    }

    var leaderDirectory: String { root + "/leader" }

    static func path(of file: Int) -> String { "queues/q\(file)/segment.000001" }

    /// Writes `bytes` of broker-like events over `files` files, before any leader runs: the
    /// leader finds them at start-up, as after a broker's earlier life.
    func writeDirectory(bytes: Int, files: Int) throws {
        var corpus = BrokerMessageCorpus()
        for file in 0..<files {
            let url = URL(fileURLWithPath: leaderDirectory + "/" + Self.path(of: file))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            let handle = try FileHandle(forWritingTo: url)
            var remaining = bytes / files + (file < bytes % files ? 1 : 0)
            while remaining > 0 {
                let block = content(min(remaining, 4 << 20), from: &corpus)
                try handle.write(contentsOf: block)
                remaining -= block.count
            }
            try handle.close()
        }
    }

    /// Exactly `count` bytes: events, or random bytes when `incompressible`.
    func content(_ count: Int, from corpus: inout BrokerMessageCorpus) -> Data {
        guard incompressible else { return Self.events(count, from: &corpus) }
        var generator = SystemRandomNumberGenerator()
        var block = Data(count: count)
        block.withUnsafeMutableBytes { raw in
            for index in stride(from: 0, to: count - count % 8, by: 8) { raw.storeBytes(of: generator.next(), toByteOffset: index, as: UInt64.self) }
            for index in (count - count % 8)..<count { raw[index] = UInt8.random(in: 0...255, using: &generator) }
        }
        return block
    }

    /// Exactly `count` bytes of whole and cut events.
    static func events(_ count: Int, from corpus: inout BrokerMessageCorpus) -> Data {
        var block = Data(capacity: count)
        while block.count < count { block.append(contentsOf: corpus.nextMessage()) }
        return block.prefix(count)
    }

    func leaderConfiguration() -> ReplicationLeaderConfiguration {
        var configuration = ReplicationLeaderConfiguration(dataDirectory: leaderDirectory, clusterID: "catch-up", nodeID: "leader")
        configuration.ackTimeout = .seconds(60)
        configuration.heartbeatTimeout = .seconds(60)
        configuration.maxLagTime = .seconds(60)
        configuration.producerTimeout = .seconds(120)
        return configuration
    }

    func follower(_ name: String, port: Int) throws -> ReplicationFollower {
        var configuration = ReplicationFollowerConfiguration(
            dataDirectory: root + "/" + name, leaderHost: "127.0.0.1", leaderPort: port, clusterID: "catch-up", nodeID: name
        )
        configuration.leaderSilenceTimeout = .seconds(60)
        return try ReplicationFollower(configuration: configuration, secret: secret, logger: logger)
    }

    /// Runs a leader on the directory until `body` returns, then stops it gracefully.
    func withLeader<T: Sendable>(_ body: (ReplicationLeader, Int) async throws -> T) async throws -> T {
        let leader = try ReplicationLeader(configuration: leaderConfiguration(), secret: secret, logger: logger)
        let serving = Task { try await leader.run() }
        defer { serving.cancel() }
        let port = try await leader.listeningPort()
        let result = try await body(leader, port)
        serving.cancel()
        _ = await serving.result
        return result
    }

    /// Runs `follower` until `done` holds; returns the seconds that took, printing the leader's
    /// full-sync progress every second meanwhile.
    func follow(_ follower: ReplicationFollower, leader: ReplicationLeader, until done: () -> Bool) async throws -> Double {
        let started = ContinuousClock.now
        let following = Task { try await follower.run() }
        var lastPrint = started
        while !done() {
            try await Task.sleep(for: .milliseconds(20))
            if ContinuousClock.now - lastPrint >= .seconds(1), let progress = leader.status().followers.first?.fullSync {
                lastPrint = .now
                print("  full sync: \(progress.filesDone)/\(progress.files) files, \(progress.bytesDone)/\(progress.bytes) bytes (kept \(progress.bytesKept)), \(progress.bytesPerSecond) B/s, \(progress.secondsLeft) s left")
            }
            if ContinuousClock.now - started > .seconds(600) { throw CancellationError() }
        }
        let elapsed = ContinuousClock.now - started
        following.cancel()
        _ = await following.result
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// A fresh follower's full sync; returns its seconds. Keeps its directory when asked.
    func fullSync(into name: String, keep: Bool) async throws -> Double {
        let seconds = try await withLeader { leader, port in
            let follower = try self.follower(name, port: port)
            return try await follow(follower, leader: leader) {
                follower.status().phase == .streaming && follower.status().epoch == leader.epoch
            }
        }
        if !keep { try FileManager.default.removeItem(atPath: root + "/" + name) }
        return seconds
    }

    /// The follower `name`, which holds the previous leader's files, returns after a restart
    /// with `appendBytes` appended across the files; `crash` forgets how the last epoch ended.
    func catchUp(follower name: String, appendBytes: Int, files: Int, crash: Bool) async throws -> CatchUpBenchmark.CatchUp {
        if crash { try FileManager.default.removeItem(atPath: leaderDirectory + "/.brpl/epoch-history.json") }
        return try await withLeader { leader, port in
            var corpus = BrokerMessageCorpus(seed: crash ? 1 : 2)
            for file in 0..<files {
                var remaining = appendBytes / files
                while remaining > 0 {
                    let piece = content(min(remaining, 64 << 10), from: &corpus)
                    try await leader.append(to: Self.path(of: file), bytes: ByteBuffer(bytes: piece))
                    remaining -= piece.count
                }
            }
            leader.flush()
            let follower = try self.follower(name, port: port)
            let seconds = try await follow(follower, leader: leader) {
                follower.status().epoch == leader.epoch && follower.status().lastDurableLSN == leader.lastLSN
            }
            let status = leader.status()
            let moved = status.fullSyncWireBytes + (status.followers.first?.sentBytes ?? 0)
            let appended = appendBytes / files * files
            return CatchUpBenchmark.CatchUp(
                restart: crash ? "crash" : "graceful", appendedBytes: appended, movedBytes: moved,
                ratio: Double(moved) / Double(appended), seconds: seconds, epochResume: status.epochResumes > 0
            )
        }
    }
}
