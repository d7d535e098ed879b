import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Leader robustness", .serialized, .heavy)
struct LeaderRobustnessTests {
    /// TCP sockets on this machine with `port` at either end, other than the listener
    /// (from /proc/net/tcp, so other tests running in parallel do not count).
    static func socketsUsing(port: Int) -> Int {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 0 }
        let hex = String(format: ":%04X", port)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3 else { return false }
            let state = fields[3]
            // 0A is LISTEN; 06 (TIME_WAIT) holds no descriptor and ages out on its own.
            return state != "0A" && state != "06" && (fields[1].hasSuffix(hex) || fields[2].hasSuffix(hex))
        }.count
    }

    /// 1,000 followers that read but never ack are evicted by the ack
    /// timeout while producers write; nothing deadlocks, and no connection or task is left.
    @Test func aThousandEvictionsUnderConcurrentProducersLeaveNothingBehind() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { $0.ackTimeout = .milliseconds(200) }) { leader, port in
            let target = 1_000
            let cycles = Atomic<Int>(0)
            let failures = Atomic<Int>(0)
            let stop = Atomic<Bool>(false)
            let producing = Task {
                var written = 0
                let started = ContinuousClock.now
                while !stop.load(ordering: .relaxed), written < 2_000_000, ContinuousClock.now - started < .seconds(240) {
                    try await leader.append(to: "load/\(written % 8)", bytes: [UInt8](repeating: UInt8(truncatingIfNeeded: written), count: 200))
                    written += 1
                    if written % 64 == 0 { await Task.yield() }
                }
                return written
            }
            // Plain threads: the raw followers block in recv, which must not tie up Swift's cooperative pool.
            let epoch = leader.epoch
            let threads = (0..<16).map { index in
                Thread {
                    while cycles.load(ordering: .relaxed) < target {
                        do {
                            let raw = try RawFollower(port: port)
                            let position = (epoch, leader.core.sealedThroughLSN)
                            guard case .welcome = try raw.handshake(cluster: cluster.clusterID, nodeID: "raw-\(index)", secret: cluster.secret, position: position) else {
                                failures.add(1, ordering: .relaxed)
                                continue
                            }
                            // Read everything, ack nothing, until the leader closes the connection.
                            while try raw.receive() != nil {}
                            cycles.add(1, ordering: .relaxed)
                        } catch {
                            // A reset instead of a FIN also ends a cycle.
                            cycles.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
            for thread in threads { thread.start() }
            let finished = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(240)) { cycles.load(ordering: .relaxed) >= target }
            stop.store(true, ordering: .relaxed)
            let written = try await producing.value
            #expect(finished, "only \(cycles.load(ordering: .relaxed)) evictions")
            #expect(failures.load(ordering: .relaxed) == 0)
            #expect(written > 0)
            let evictions = leader.core.counters.evictions.values.reduce(0, +)
            #expect(evictions >= target)
            // Every evicted session is gone, its connection task ended and its socket closed.
            let cleaned = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(60)) {
                leader.status().followers.isEmpty && leader.openConnectionCount == 0 && Self.socketsUsing(port: port) == 0
            }
            #expect(cleaned, "followers \(leader.status().followers.count), connections \(leader.openConnectionCount), sockets \(Self.socketsUsing(port: port))")
            // The leader still serves: a real follower joins and converges.
            try await withFollower(cluster, "after", port: port) { follower in
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(converged)
            }
        }
    }

    /// A 128 MiB replace and a 128 MiB append stream in 1 MiB chunks and reach the follower
    /// without an eviction.
    @Test func largeWritesReachTheFollowerWithoutAnEviction() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            try await withFollower(cluster, "f", port: port) { follower in
                let synced = try await ReplicationTestCluster.Workspace.eventually { follower.status().phase == .streaming }
                #expect(synced)
                // Incompressible bytes, filled through raw pointers (element loops are slow in debug builds).
                var random = SplitMix(seed: 128)
                let size = 128 * 1024 * 1024
                var words = [UInt64](repeating: 0, count: size / 8)
                words.withUnsafeMutableBufferPointer { buffer in
                    for index in buffer.indices { buffer[index] = random.next() }
                }
                let contents = words.withUnsafeBytes { ByteBuffer(bytes: $0) }
                try await leader.replace("big/replaced", contents: contents)
                try await leader.append(to: "big/appended", bytes: contents)
                leader.flush()
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(240)) { follower.status().lastDurableLSN == last }
                #expect(converged)
                #expect(leader.core.counters.evictions.isEmpty, "evictions: \(leader.core.counters.evictions)")
                #expect(follower.status().connects == 1)
                for name in ["big/replaced", "big/appended"] {
                    let copy = try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/f/" + name))
                    #expect(copy.count == size)
                    let identical = copy.withUnsafeBytes { copied in
                        contents.withUnsafeReadableBytes { original in memcmp(copied.baseAddress!, original.baseAddress!, size) == 0 }
                    }
                    #expect(identical, "\(name) differs")
                }
            }
        }
    }

    /// A leader restart takes a new epoch; the follower reconnects, full-syncs and converges.
    /// The epoch history is removed first, as a crash leaves it without the epoch's end:
    /// otherwise the follower, which holds everything, would resume without a full sync.
    @Test func followersResyncWithARestartedLeader() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let first = try ReplicationLeader(configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let firstRun = Task { try await first.run() }
        let port = try await first.listeningPort()
        try await withFollower(cluster, "f", port: port) { follower in
            try await StreamingReplicationTests.produce(first, producers: 2, recordsEach: 500, files: 10, seed: 21)
            let caughtUp = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == first.lastLSN }
            #expect(caughtUp)
            firstRun.cancel()
            _ = try? await firstRun.value
            try FileManager.default.removeItem(atPath: cluster.root + "/leader/" + EpochHistoryFile.rawPath)

            var configuration = cluster.leaderConfiguration()
            configuration.port = port
            // Heartbeats every 10 ms reach the follower in the middle of its full sync: its
            // replies must not claim its old epoch's LSN as durable (that would be evicted).
            configuration.heartbeatInterval = .milliseconds(10)
            let second = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
            #expect(second.epoch == first.epoch + 1)
            let secondRun = Task { try await second.run() }
            defer { secondRun.cancel() }
            _ = try await second.listeningPort()
            try await StreamingReplicationTests.produce(second, producers: 2, recordsEach: 500, files: 10, seed: 22)
            let converged = try await ReplicationTestCluster.Workspace.eventually {
                follower.status().epoch == second.epoch && follower.status().lastDurableLSN == second.lastLSN
            }
            #expect(converged, "follower at epoch \(follower.status().epoch) LSN \(follower.status().lastDurableLSN)")
            #expect(follower.status().fullSyncs == 2)
            #expect(second.core.counters.evictions.isEmpty, "evictions: \(second.core.counters.evictions)")
            let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
            #expect(try ReplicationTestCluster.files(under: cluster.root + "/f") == expected)
        }
    }

    /// A replace or delete that fails locally replicates nothing and leaves the leader able to
    /// cut a full sync. `a` is a regular file, so `a/b` fails with ENOTDIR without any disk
    /// fault. Before, the failure committed an empty replace record that every follower
    /// refused, and left the path marked as changing, so every later full sync was busy.
    @Test func aWriteThatFailsLocallyReplicatesNothingAndLeavesTheLeaderAbleToCut() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            try await withFollower(cluster, "early", port: port) { early in
                let first = try await leader.append(to: "a", bytes: Array("first".utf8))
                let deleteError = await #expect(throws: ReplicationError.self) { try await leader.delete("a/b") }
                #expect(deleteError?.code == .storage && deleteError?.message.contains("Not a directory") == true, "\(String(describing: deleteError))")
                let replaceError = await #expect(throws: ReplicationError.self) { try await leader.replace("a/b", contents: Array("never".utf8)) }
                #expect(replaceError?.code == .storage, "\(String(describing: replaceError))")
                #expect(leader.lastLSN == first, "nothing replicated for the failed writes")
                let second = try await leader.append(to: "a", bytes: Array(" second".utf8))
                try await leader.waitForReplication(upTo: second, timeout: .seconds(10))
                let caughtUp = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(10)) { early.status().lastDurableLSN >= second }
                #expect(caughtUp, "the connected follower kept streaming: \(early.status())")
                #expect(early.status().fullSyncs == 1, "no resync forced by a refused record: \(early.status())")
                let temporaries = (try? FileManager.default.contentsOfDirectory(atPath: cluster.root + "/leader/.brpl/tmp")) ?? []
                #expect(temporaries.isEmpty, "the failed replace left \(temporaries)")
            }
            // A new follower needs a full sync: the leader must be able to cut.
            try await withFollower(cluster, "late", port: port) { late in
                let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(10)) { late.status().lastDurableLSN >= leader.lastLSN }
                #expect(converged, "the new follower's full sync: \(late.status()), leader \(leader.status())")
                #expect(try ReplicationTestCluster.files(under: cluster.root + "/late") == ReplicationTestCluster.files(under: cluster.root + "/leader"))
            }
        }
    }
}

@Suite("Handshake refusals", .serialized, .heavy)
struct HandshakeRefusalTests {
    @Test func wrongSecretClusterAndVersionAreRefusedWithAReason() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            let wrongSecret = try SharedSecret(bytes: Array("not the cluster's secret at all".utf8))
            // Its authenticate fails the leader's frame authentication, and the leader's refusal
            // is tagged with the real secret's keys: this follower cannot even read it.
            let reply = try await Self.offThePool { () -> String in
                do {
                    return "\(try RawFollower(port: port).handshake(cluster: cluster.clusterID, nodeID: "x", secret: wrongSecret))"
                } catch {
                    return "\(error)"
                }
            }
            #expect(reply.contains("refusal frame 1 failed authentication"), "\(reply)")
            #expect(leader.status().followers.isEmpty)

            let wrongCluster = try await Self.offThePool { try RawFollower(port: port).handshake(cluster: "other", nodeID: "x", secret: cluster.secret) }
            guard case .refusal(let clusterRefusal) = wrongCluster else { Issue.record("expected a refusal"); return }
            #expect(clusterRefusal.code == .wrongCluster)
            #expect(clusterRefusal.reason.contains("\"other\""))

            let version = try await Self.offThePool { () throws -> WireMessage? in
                let raw = try RawFollower(port: port)
                var preamble = ByteBuffer()
                FrameParser.writePreamble(to: &preamble, version: 9)
                try raw.send(preamble)
                return try raw.receive()
            }
            guard case .refusal(let versionRefusal) = version else { Issue.record("expected a refusal"); return }
            #expect(versionRefusal.code == .unsupportedVersion)
            #expect(versionRefusal.reason.contains("unsupported protocol version 9"))
        }
    }

    /// A follower with the wrong secret says why and backs off (no tight loop).
    @Test func aRefusedFollowerBacksOffAndSaysWhy() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            var configuration = cluster.followerConfiguration("f", port: port)
            configuration.refusalDelay = .seconds(1)
            let follower = try ReplicationFollower(
                configuration: configuration, secret: SharedSecret(bytes: Array("a different secret of 32 bytes!!".utf8)), logger: ReplicationTestCluster.Workspace.logger
            )
            let running = Task { try await follower.run() }
            defer { running.cancel() }
            // Mutual authentication: the follower finds first that the leader's proof does not match its secret.
            let refused = try await ReplicationTestCluster.Workspace.eventually {
                follower.status().lastError?.contains("could not prove the shared secret") == true
            }
            #expect(refused, "\(follower.status().lastError ?? "no error")")
            // No tight loop: with at least 1 s between refused attempts, a 3 s window holds at
            // most 4 attempts, however fast or slow the machine is.
            let before = follower.status().connects
            try await Task.sleep(for: .seconds(3))
            let attempts = follower.status().connects - before
            #expect(attempts <= 4, "\(attempts) attempts in 3 s")
        }
    }

    /// Blocking socket calls run on a plain thread, never on Swift's cooperative pool.
    static func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}
