import HeavyTestGate
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// With real `replication-node` processes: a follower process frozen with
/// SIGSTOP under load, and one killed with SIGKILL and restarted on its data directory. (The
/// leader killed after a confirm, and a follower promoted, is PromotionProcessTests.)
@Suite("Chaos: follower processes", .serialized, .heavy)
struct ChaosProcessTests {
    /// Three processes on loopback: a leader with a paced load, and followers f1 and f2.
    ///
    /// The leader's `ackTimeout` is raised from 3 s: on a machine running other heavy suites, a
    /// healthy follower process can be starved for about 4 s (measured with the whole suite
    /// running beside this one), and the test must tell the frozen follower from a starved one.
    fileprivate final class Cluster {
        let root: String
        let port: Int
        let secretFile: String
        var nodes: [String: NodeProcess] = [:]

        init(loadRate: Int, loadSeconds: Int, ackTimeoutSeconds: Int) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-chaos-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            secretFile = root + "/secret"
            try Data("chaos-process-test-shared-secret-0123\n".utf8).write(to: URL(fileURLWithPath: secretFile))
            port = try freeLoopbackPort()
            let configFile = root + "/leader-config.json"
            try Data(#"{"ackTimeoutSeconds": \#(ackTimeoutSeconds)}"#.utf8).write(to: URL(fileURLWithPath: configFile))
            nodes["leader"] = try NodeProcess("leader", arguments: [
                "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--secret-file", secretFile,
                "--cluster-id", "chaos", "--status-file", root + "/leader.json",
                "--load-rate", "\(loadRate)", "--load-duration", "\(loadSeconds)", "--load-files", "4", "--config", configFile,
            ], directory: root)
            for name in ["f1", "f2"] { try startFollower(name) }
        }

        deinit {
            for node in nodes.values { node.killIfRunning() }
            try? FileManager.default.removeItem(atPath: root)
        }

        /// Starts (or restarts) follower `name` on its data directory; its log is appended to.
        func startFollower(_ name: String, run: Int = 1) throws {
            nodes[name] = try NodeProcess(run == 1 ? name : "\(name)-run\(run)", arguments: [
                "follower", "--data-dir", root + "/" + name, "--leader", "127.0.0.1:\(port)", "--secret-file", secretFile,
                "--cluster-id", "chaos", "--node-id", name, "--status-file", root + "/\(name).json",
            ], directory: root)
        }

        func leader() -> LeaderStatusFile? {
            LeaderStatusFile.read(root + "/leader.json")
        }

        func follower(_ name: String) -> FollowerStatusFile? {
            FollowerStatusFile.read(root + "/\(name).json")
        }

        /// Every log, for failure messages.
        func logs() -> String {
            nodes.values.sorted { $0.name < $1.name }.map { $0.logTail(lines: 40) }.joined(separator: "\n")
        }

        /// The leader's log lines that contain `text`.
        func leaderLog(containing text: String) -> [String] {
            let log = (try? String(contentsOfFile: root + "/leader.log", encoding: .utf8)) ?? ""
            return log.split(separator: "\n").map(String.init).filter { $0.contains(text) }
        }

        /// Polls every 100 ms until `condition` holds, for at most `timeout`.
        func eventually(_ what: String, timeout: Duration = .seconds(120), _ condition: () -> Bool) async throws {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                for node in nodes.values where !node.isRunning && node.exitStatus != nil {
                    Issue.record("\(node.name) exited early with status \(node.termination)\n\(logs())")
                    throw NodeTestError("\(node.name) exited")
                }
                if condition() { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("not within \(timeout): \(what)\nleader status \(leaderStatusText())\n\(logs())")
            throw NodeTestError(what)
        }

        func leaderStatusText() -> String {
            FileManager.default.contents(atPath: root + "/leader.json").map { String(decoding: $0, as: UTF8.self) } ?? "(none)"
        }

        /// Both followers live in the leader's view, holding its last LSN, with the load done.
        func converged() -> Bool {
            guard let leader = leader(), leader.loadFinished, leader.lastLSN > 0 else { return false }
            return ["f1", "f2"].allSatisfy { name in
                leader.followers.contains { $0.nodeID == name && $0.state == "live" && $0.ackedLSN == leader.lastLSN }
                    && (follower(name)?.lastDurableLSN ?? 0) == leader.lastLSN
            }
        }

        /// Both followers hold exactly the leader's files.
        func expectIdenticalFiles() throws {
            let expected = try dataFiles(under: root + "/leader")
            #expect(expected.count == 4, "the leader holds \(expected.keys.sorted())")
            for name in ["f1", "f2"] {
                let actual = try dataFiles(under: root + "/" + name)
                #expect(actual.keys.sorted() == expected.keys.sorted(), "\(name) holds other files")
                for (path, bytes) in expected where actual[path] != bytes {
                    Issue.record("\(name)/\(path): \(actual[path]?.count ?? -1) bytes, the leader has \(bytes.count)")
                }
            }
        }

        func stopAll() async throws {
            for node in nodes.values { node.send(signal: SIGTERM) }
            for node in nodes.values {
                let status = try await node.waitForExit(timeout: .seconds(10))
                #expect(status == 0, "\(node.name) did not stop cleanly\n\(node.logTail())")
            }
        }
    }

    /// SIGSTOP freezes f2 for 10 s while the leader writes 3,000 records/s: the leader evicts
    /// it (its acks stop: ack-timeout after 5 s, or its queue fills) without f1 noticing; after
    /// SIGCONT it resyncs and both followers end with the leader's exact files.
    ///
    /// The 5 s ack timeout splits the 10 s freeze in two equal margins: f1 would have to be
    /// starved for 5 s to be evicted, and the leader for 5 s to miss the frozen follower.
    @Test func aFollowerFrozenForTenSecondsIsEvictedThenResyncsAndConverges() async throws {
        let cluster = try Cluster(loadRate: 3_000, loadSeconds: 20, ackTimeoutSeconds: 5)
        try await cluster.eventually("both followers stream and the load is flowing") {
            guard let leader = cluster.leader() else { return false }
            return leader.followers.filter { $0.state == "live" }.count == 2 && leader.lastLSN > 3_000
        }
        let before = try #require(cluster.leader())
        // Followers may have been refused a few times while the leader started listening.
        let f1ConnectsBefore = try #require(cluster.follower("f1")).connects
        #expect(before.evictions.isEmpty)
        let frozen = try #require(cluster.nodes["f2"])
        frozen.send(signal: SIGSTOP)
        let stoppedAt = ContinuousClock.now
        // Frozen for 10 s; note when the leader's status first shows the eviction, and how long
        // f1's acks (as the leader saw them) and its durable LSN (as it reported) ever stood still.
        var evictedAfter: Duration?
        var f1Acks = ProgressGap()
        var f1Durable = ProgressGap()
        func sampleF1() {
            guard let leader = cluster.leader() else { return }
            if let acked = leader.followers.first(where: { $0.nodeID == "f1" })?.ackedLSN { f1Acks.observe(acked, behind: leader.lastLSN) }
            if let durable = cluster.follower("f1")?.lastDurableLSN { f1Durable.observe(durable, behind: leader.lastLSN) }
        }
        while ContinuousClock.now < stoppedAt + .seconds(10) {
            if evictedAfter == nil, let leader = cluster.leader(), !leader.evictions.isEmpty { evictedAfter = ContinuousClock.now - stoppedAt }
            sampleF1()
            try await Task.sleep(for: .milliseconds(50))
        }
        let whileFrozen = try #require(cluster.leader())
        frozen.send(signal: SIGCONT)
        #expect(evictedAfter != nil, "not evicted within 10 s of SIGSTOP: \(cluster.leaderStatusText())")
        #expect(!whileFrozen.followers.contains { $0.nodeID == "f2" && $0.state == "live" }, "the leader still streams to the frozen follower")
        #expect(whileFrozen.followers.contains { $0.nodeID == "f1" && $0.state == "live" })

        try await cluster.eventually("the load finishes and both followers hold all of it") {
            sampleF1()
            return cluster.converged()
        }
        try cluster.expectIdenticalFiles()
        let leader = try #require(cluster.leader())
        let f1 = try #require(cluster.follower("f1"))
        let f2 = try #require(cluster.follower("f2"))
        // 3,000 records/s for 20 s when the leader keeps the pace; each append takes one LSN.
        #expect(leader.loadRecords > 30_000 && leader.lastLSN == UInt64(leader.loadRecords), "\(leader.loadRecords) records, last LSN \(leader.lastLSN)")
        #expect(Set(leader.evictions.keys).isSubset(of: ["ack-timeout", "queue-full", "heartbeat-timeout"]), "\(leader.evictions)")
        let evictionLines = cluster.leaderLog(containing: "follower evicted")
        let f1Stalls = "f1's acks as the leader saw them stood still for at most \(f1Acks.longest), its durable LSN for at most \(f1Durable.longest)"
        #expect(
            !evictionLines.isEmpty && evictionLines.allSatisfy { $0.contains("follower=f2") },
            "f1 must never be evicted: \(evictionLines); \(f1Stalls)\n\(cluster.nodes["f1"]?.logTail(lines: 15) ?? "")"
        )
        #expect(f1.connects == f1ConnectsBefore, "f1 reconnected: \(f1)")
        #expect(f2.connects >= 2 && f2.resumes + f2.fullSyncs >= 2, "f2 resynced: \(f2)")
        let resync = leader.partialResyncs > before.partialResyncs ? "partial (from the backlog)" : "full"
        print(
            "SIGSTOP: f2 evicted \(evictedAfter.map { "\($0)" } ?? "never") after SIGSTOP, evictions \(leader.evictions); resync \(resync): leader partialResyncs \(before.partialResyncs) -> \(leader.partialResyncs), fullSyncs \(before.fullSyncs) -> \(leader.fullSyncs); f2 connects \(f2.connects), resumes \(f2.resumes), fullSyncs \(f2.fullSyncs), lastError \(f2.lastError ?? "none"); \(leader.lastLSN) records converged"
        )
        print("SIGSTOP: \(f1Stalls)")
        print("SIGSTOP: leader log: \(evictionLines.prefix(2)) \(cluster.leaderLog(containing: "follower=f2").suffix(2))")
        try await cluster.stopAll()
    }

    /// SIGKILL f2 three times under load (after 1.5, 2.5 and 3.5 s alive) and restart it on
    /// the same data directory each time: it picks up from what it had made durable, and both
    /// followers end with the leader's exact files; f1 is never disturbed.
    @Test func aFollowerKilledAndRestartedOnItsDataDirectoryConverges() async throws {
        // A killed process's socket is closed by its kernel: no timer is involved, so the ack
        // timeout can be long enough that no starvation evicts anyone.
        let cluster = try Cluster(loadRate: 3_000, loadSeconds: 20, ackTimeoutSeconds: 8)
        try await cluster.eventually("both followers stream and the load is flowing") {
            guard let leader = cluster.leader() else { return false }
            return leader.followers.filter { $0.state == "live" }.count == 2 && leader.lastLSN > 3_000
        }
        let before = try #require(cluster.leader())
        let f1ConnectsBefore = try #require(cluster.follower("f1")).connects
        var kills: [String] = []
        for (run, alive) in [(2, 1.5), (3, 2.5), (4, 3.5)] {
            try await Task.sleep(for: .seconds(alive))
            let victim = try #require(cluster.nodes["f2"])
            let durable = cluster.follower("f2")?.lastDurableLSN ?? 0
            let leaderLSN = cluster.leader()?.lastLSN ?? 0
            victim.send(signal: SIGKILL)
            _ = try await victim.waitForExit(timeout: .seconds(10))
            kills.append("killed at durable LSN \(durable) (leader at \(leaderLSN))")
            try cluster.startFollower("f2", run: run)
        }
        try await cluster.eventually("the load finishes and both followers hold all of it") { cluster.converged() }
        try cluster.expectIdenticalFiles()
        let leader = try #require(cluster.leader())
        let f1 = try #require(cluster.follower("f1"))
        let f2 = try #require(cluster.follower("f2"))
        // 3,000 records/s for 20 s when the leader keeps the pace; each append takes one LSN.
        #expect(leader.loadRecords > 30_000 && leader.lastLSN == UInt64(leader.loadRecords), "\(leader.loadRecords) records, last LSN \(leader.lastLSN)")
        #expect(cluster.leaderLog(containing: "follower evicted").allSatisfy { $0.contains("follower=f2") })
        #expect(f1.connects == f1ConnectsBefore, "f1 reconnected: \(f1)")
        let resumed = leader.partialResyncs - before.partialResyncs
        let fullSynced = leader.fullSyncs - before.fullSyncs
        #expect(resumed + fullSynced >= 3, "each restart resynced: \(resumed) partial, \(fullSynced) full")
        print(
            "SIGKILL: \(kills.joined(separator: "; ")); after the restarts: \(resumed) partial resyncs (from the backlog) and \(fullSynced) full syncs; evictions \(leader.evictions); last run of f2: connects \(f2.connects), resumes \(f2.resumes), fullSyncs \(f2.fullSyncs); \(leader.lastLSN) records converged"
        )
        print("SIGKILL: leader log: \(cluster.leaderLog(containing: "follower=f2").filter { !$0.contains("full sync progress") }.suffix(4))")
        try await cluster.stopAll()
    }
}

/// The longest time a sampled LSN stood still while the leader was ahead of it.
private struct ProgressGap {
    private var value: UInt64?
    private var since = ContinuousClock.now
    private(set) var longest: Duration = .zero

    mutating func observe(_ lsn: UInt64, behind leaderLSN: UInt64) {
        let now = ContinuousClock.now
        if lsn != value || lsn >= leaderLSN {
            value = lsn
            since = now
        }
        longest = max(longest, now - since)
    }
}
