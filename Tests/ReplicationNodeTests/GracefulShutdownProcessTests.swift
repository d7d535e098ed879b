@_spi(Benchmarks) @testable import BrokerReplication
import Foundation
import HeavyTestGate
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGTERM stops `replication-node` gracefully, under load: a follower acks everything it
/// applied before it exits, and a leader waits for its followers to ack its last LSN.
@Suite("replication-node graceful shutdown on SIGTERM", .serialized, .heavy)
struct GracefulShutdownProcessTests {
    /// Polls `read` every 100 ms until `done` holds or `timeout` passes; the last value read.
    private static func poll<Value>(
        timeout: Duration = .seconds(60), _ read: () -> Value?, until done: (Value) -> Bool
    ) async throws -> Value? {
        let deadline = ContinuousClock.now + timeout
        var last = read()
        while ContinuousClock.now < deadline {
            if let value = last, done(value) { return value }
            try await Task.sleep(for: .milliseconds(100))
            last = read()
        }
        return last
    }

    @Test func sigtermUnderLoadStopsAFollowerAndThenTheLeaderWithEverythingAcked() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graceful-shutdown-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretFile = root + "/secret"
        try Data("graceful-shutdown-test-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        let port = try freeLoopbackPort()

        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.killIfRunning() } }
        // The load runs for a minute at least: both signals below arrive while it runs.
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--secret-file", secretFile,
            "--cluster-id", "graceful", "--status-file", root + "/leader.json",
            "--load-rate", "5000", "--load-duration", "60", "--load-files", "8",
        ], directory: root)
        nodes.append(leader)
        var followers: [String: NodeProcess] = [:]
        for name in ["f1", "f2"] {
            let follower = try NodeProcess(name, arguments: [
                "follower", "--data-dir", root + "/" + name, "--leader", "127.0.0.1:\(port)", "--secret-file", secretFile,
                "--cluster-id", "graceful", "--node-id", name, "--status-file", root + "/\(name).json",
            ], directory: root)
            nodes.append(follower)
            followers[name] = follower
        }
        let logs = { nodes.map { $0.logTail() }.joined(separator: "\n") }
        let leaderStatus = { LeaderStatusFile.read(root + "/leader.json") }

        // Both followers stream and have acked a few seconds of load.
        let streaming = try await Self.poll(leaderStatus) { status in
            !nodes.contains { !$0.isRunning }
                && ["f1", "f2"].allSatisfy { status.follower($0)?.state == "live" && status.follower($0)!.ackedLSN >= 15_000 }
        }
        try #require(nodes.allSatisfy { $0.isRunning }, "a node exited early\n\(logs())")
        try #require(streaming.map { status in ["f1", "f2"].allSatisfy { (status.follower($0)?.ackedLSN ?? 0) >= 15_000 } } == true, "not streaming within 60 s\n\(logs())")

        // The follower, stopped while records keep arriving, commits and acks what it applied:
        // its last status file, written after it stopped, matches its state file.
        let f1 = followers["f1"]!
        f1.send(signal: SIGTERM)
        #expect(try await f1.waitForExit(timeout: .seconds(30)) == 0, "f1 did not exit with status 0 within 30 s of SIGTERM\n\(f1.logTail())")
        let f1Final = try #require(FollowerStatusFile.read(root + "/f1.json"))
        let f1OnDisk = try FollowerStateFile(directory: DataDirectory(path: root + "/f1")).load().lastDurableLSN
        #expect(f1Final.lastDurableLSN == f1OnDisk, "f1's last status file says durable through \(f1Final.lastDurableLSN); its state file says \(f1OnDisk)")
        #expect(f1Final.lastAckedLSN == f1OnDisk, "f1 stopped with LSNs \(f1Final.lastAckedLSN + 1)...\(f1OnDisk) durable but not acked")
        #expect(f1OnDisk >= 15_000)

        // The leader, stopped while its load runs, stops the load, then waits for f2 to ack its
        // last LSN. (It drops a disconnected follower from its status, so its own status cannot
        // show f1's last ack, nor f2's once it closed: its log and f2's acks show the drain.)
        let beforeStop = try #require(leaderStatus())
        #expect(!beforeStop.loadFinished, "the load ended before the leader's SIGTERM; the drain below proves less")
        leader.send(signal: SIGTERM)
        #expect(try await leader.waitForExit(timeout: .seconds(30)) == 0, "the leader did not exit with status 0 within 30 s of SIGTERM\n\(leader.logTail())")
        let leaderFinal = try #require(leaderStatus())
        let leaderLog = try String(contentsOfFile: leader.logPath, encoding: .utf8)
        let drain = leaderLog.split(separator: "\n").first { $0.contains("leader shutting down; waiting for followers to ack") }
        let drainedLSN = drain.flatMap { line in line.firstMatch(of: /lastLSN=(\d+)/).flatMap { UInt64($0.1) } }
        #expect(drainedLSN != nil, "the leader did not drain\n\(leader.logTail())")
        #expect(!leaderLog.contains("followers had not acked everything at shutdown"), "\(leader.logTail())")
        #expect(leaderLog.contains("load stopped by the shutdown"), "\(leader.logTail())")
        // The load stopped before the drain began: nothing was written after the LSN it waited for.
        #expect(leaderFinal.lastLSN == drainedLSN && leaderFinal.lastLSN >= beforeStop.lastLSN, "last LSN \(leaderFinal.lastLSN), drained to \(String(describing: drainedLSN))")

        // f2 acked all of it before the leader closed, and holds all of it.
        let f2 = followers["f2"]!
        let f2Status = try await Self.poll(timeout: .seconds(30), { FollowerStatusFile.read(root + "/f2.json") }) { $0.lastAckedLSN >= leaderFinal.lastLSN }
        #expect(f2Status?.lastAckedLSN == leaderFinal.lastLSN, "f2 acked \(String(describing: f2Status?.lastAckedLSN)), the leader's last LSN is \(leaderFinal.lastLSN)")
        f2.send(signal: SIGTERM)
        #expect(try await f2.waitForExit(timeout: .seconds(30)) == 0, "f2 did not exit with status 0 within 30 s of SIGTERM\n\(f2.logTail())")
        let f2Final = try #require(FollowerStatusFile.read(root + "/f2.json"))
        #expect(f2Final.lastAckedLSN == leaderFinal.lastLSN && f2Final.lastDurableLSN == leaderFinal.lastLSN, "f2 stopped with \(f2Final)")
        #expect(try dataFiles(under: root + "/f2") == dataFiles(under: root + "/leader"), "f2 is byte-identical to the stopped leader")
        for node in nodes {
            let log = try String(contentsOfFile: node.logPath, encoding: .utf8)
            #expect(log.contains("shutting down") && log.contains("stopped"), "\(node.name) logs its shutdown\n\(node.logTail())")
        }
        print("graceful shutdown: f1 stopped durable through LSN \(f1OnDisk), acked through \(f1Final.lastAckedLSN); the leader drained to LSN \(leaderFinal.lastLSN), f2 acked through \(f2Final.lastAckedLSN)")
    }

    /// A second SIGTERM while the leader waits for a frozen follower's ack exits at once with
    /// status 1, without waiting out the drain.
    @Test func aSecondSIGTERMDuringTheDrainExitsAtOnceWithStatus1() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graceful-shutdown-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretFile = root + "/secret"
        try Data("graceful-shutdown-test-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        // The frozen follower is not evicted for a minute: the drain waits its full 5 s for it.
        let configFile = root + "/replication.json"
        try Data(#"{"ackTimeoutSeconds": 60, "heartbeatTimeoutSeconds": 60, "producerTimeoutSeconds": 120}"#.utf8).write(to: URL(fileURLWithPath: configFile))
        let port = try freeLoopbackPort()
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--secret-file", secretFile,
            "--cluster-id", "graceful", "--status-file", root + "/leader.json", "--config", configFile,
            "--load-rate", "2000", "--load-duration", "60", "--load-files", "4",
        ], directory: root)
        let follower = try NodeProcess("f1", arguments: [
            "follower", "--data-dir", root + "/f1", "--leader", "127.0.0.1:\(port)", "--secret-file", secretFile,
            "--cluster-id", "graceful", "--node-id", "f1", "--config", configFile,
        ], directory: root)
        defer {
            follower.send(signal: SIGCONT)
            follower.killIfRunning()
            leader.killIfRunning()
        }
        let streaming = try await Self.poll({ LeaderStatusFile.read(root + "/leader.json") }) { status in
            status.follower("f1").map { $0.state == "live" && $0.ackedLSN >= 2_000 } ?? false
        }
        try #require(streaming?.follower("f1")?.ackedLSN ?? 0 >= 2_000, "f1 not streaming within 60 s\n\(leader.logTail())\n\(follower.logTail())")

        follower.send(signal: SIGSTOP)
        // Records keep coming for a moment: the frozen follower holds some it has not acked.
        try await Task.sleep(for: .milliseconds(500))
        leader.send(signal: SIGTERM)
        let log = { (try? String(contentsOfFile: leader.logPath, encoding: .utf8)) ?? "" }
        let draining = try await Self.poll(timeout: .seconds(30), { log() }) { $0.contains("leader shutting down; waiting for followers to ack") }
        try #require(draining?.contains("leader shutting down; waiting for followers to ack") == true, "the leader did not start its drain\n\(leader.logTail())")
        leader.send(signal: SIGTERM)
        let status = try await leader.waitForExit(timeout: .seconds(20))
        #expect(status == 1, "exit status \(String(describing: status)) after a second SIGTERM\n\(leader.logTail())")
        #expect(log().contains("second signal; exiting now"), "\(leader.logTail())")
        // Not after the drain ran out: the second signal cut it short.
        #expect(!log().contains("followers had not acked everything at shutdown"), "\(leader.logTail())")
    }
}
