import HeavyTestGate
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Real `replication-node` processes over real loopback TCP.
@Suite("replication-node processes", .serialized, .heavy)
struct ReplicationNodeProcessTests {
    @Test func leaderWithLoadAndTwoFollowersConvergeByteForByteAndStopOnSIGTERM() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretFile = root + "/secret"
        try Data("process-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        let port = try freeLoopbackPort()
        // min-ISR(2) from a configuration file, with confirmed load: every burst waits for both followers.
        let configFile = root + "/replication.json"
        try Data(#"{"policy": "minInSyncReplicas", "minInSyncReplicas": 2, "producerTimeoutSeconds": 60}"#.utf8).write(to: URL(fileURLWithPath: configFile))

        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.killIfRunning() } }
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--secret-file", secretFile,
            "--cluster-id", "process-test", "--status-file", root + "/leader.json",
            "--load-rate", "5000", "--load-duration", "3", "--load-files", "8", "--config", configFile, "--load-confirm",
        ], directory: root)
        nodes.append(leader)
        for name in ["f1", "f2"] {
            nodes.append(try NodeProcess(name, arguments: [
                "follower", "--data-dir", root + "/" + name, "--leader", "127.0.0.1:\(port)", "--secret-file", secretFile,
                "--cluster-id", "process-test", "--node-id", name, "--status-file", root + "/\(name).json",
            ], directory: root))
        }
        let logs = { nodes.map { $0.logTail() }.joined(separator: "\n") }

        // Poll the three status files until the load is done and both followers hold all of it.
        let decoder = JSONDecoder()
        var lastSeen = "no status files yet"
        var converged = false
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            for node in nodes where !node.isRunning {
                Issue.record("\(node.name) exited early with status \(node.termination)\n\(logs())")
                return
            }
            if let leaderData = FileManager.default.contents(atPath: root + "/leader.json"),
                let leaderStatus = try? decoder.decode(LeaderStatusFile.self, from: leaderData),
                let f1Data = FileManager.default.contents(atPath: root + "/f1.json"),
                let f1 = try? decoder.decode(FollowerStatusFile.self, from: f1Data),
                let f2Data = FileManager.default.contents(atPath: root + "/f2.json"),
                let f2 = try? decoder.decode(FollowerStatusFile.self, from: f2Data)
            {
                lastSeen = "leader \(String(decoding: leaderData, as: UTF8.self))\nf1 \(String(decoding: f1Data, as: UTF8.self))\nf2 \(String(decoding: f2Data, as: UTF8.self))"
                let last = leaderStatus.lastLSN
                let followersLive = ["f1", "f2"].allSatisfy { name in
                    leaderStatus.followers.contains { $0.nodeID == name && $0.state == "live" && $0.ackedLSN == last }
                }
                if leaderStatus.loadFinished, last > 0, followersLive, f1.lastDurableLSN == last, f2.lastDurableLSN == last {
                    #expect(leaderStatus.role == "leader")
                    #expect(f1.role == "follower" && f1.nodeID == "f1" && f2.nodeID == "f2")
                    // 5,000 records/s for 3 s, each append its own LSN.
                    #expect(leaderStatus.loadRecords == 15_000)
                    #expect(last == UInt64(leaderStatus.loadRecords))
                    #expect(leaderStatus.policy == "min-in-sync-replicas(2)")
                    #expect(leaderStatus.isr == ["f1", "f2"])
                    #expect(leaderStatus.confirmedLSN == last)
                    #expect(leaderStatus.notEnoughReplicasErrors == 0)
                    converged = true
                    break
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(converged, "no convergence within 120 s; last status files:\n\(lastSeen)\n\(logs())")

        let expected = try dataFiles(under: root + "/leader")
        #expect(expected.count == 8, "the leader holds \(expected.keys.sorted())")
        #expect(expected.keys.allSatisfy { $0.hasPrefix("segments/segment-") })
        for name in ["f1", "f2"] {
            let actual = try dataFiles(under: root + "/" + name)
            #expect(actual.keys.sorted() == expected.keys.sorted(), "\(name) holds other files")
            for (path, bytes) in expected {
                #expect(actual[path] == bytes, "\(name)/\(path): \(actual[path]?.count ?? -1) bytes, the leader has \(bytes.count)")
            }
        }

        for node in nodes { node.send(signal: SIGTERM) }
        for node in nodes {
            let status = try await node.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(node.name) did not exit with status 0 within 10 s after SIGTERM\n\(node.logTail())")
        }
        #expect(try String(contentsOfFile: leader.logPath, encoding: .utf8).contains("load finished: 15000 records"))
    }

    @Test func aBadConfigurationValueExitsWithAnErrorNamingTheKey() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data("process-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
        try Data(#"{"queueBytes": "a lot"}"#.utf8).write(to: URL(fileURLWithPath: root + "/bad.json"))
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--secret-file", root + "/secret",
            "--config", root + "/bad.json",
        ], directory: root)
        defer { leader.killIfRunning() }
        let status = try await leader.waitForExit(timeout: .seconds(10))
        let log = try String(contentsOfFile: leader.logPath, encoding: .utf8)
        #expect(status != nil && status != 0, "exit status \(String(describing: status))")
        #expect(log.contains("--config ") && log.contains(#"bad.json: queueBytes: must be a whole number of bytes, got "a lot""#), "\(log)")
    }

    @Test func leaderWithMissingSecretFileExitsWithAnErrorNamingTheFile() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let missing = root + "/no-such-secret"
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--secret-file", missing,
        ], directory: root)
        defer { leader.killIfRunning() }
        let status = try await leader.waitForExit(timeout: .seconds(10))
        let log = try String(contentsOfFile: leader.logPath, encoding: .utf8)
        #expect(status != nil && status != 0, "exit status \(String(describing: status))")
        #expect(log.contains(missing), "the error does not name the file:\n\(log)")
        #expect(log.contains("--secret-file"))
    }
}
