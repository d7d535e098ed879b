import Foundation
import HeavyTestGate
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `replication-node --log-format json --log-level …`: every line a JSON object, the
/// eviction's line with its figures as fields, and nothing below the level.
@Suite("JSON log lines", .serialized, .heavy)
struct JSONLogProcessTests {
    /// Every non-empty line of `path` as a JSON object; a line that is not one is an issue.
    static func jsonLines(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("not a JSON object: \(line)")
                return nil
            }
            return object
        }
    }

    @Test func anEvictionIsOneJSONLineWithItsFiguresAndTheLevelFilters() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("json-log-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data("json-log-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
        try Data(#"{"ackTimeoutSeconds": 2}"#.utf8).write(to: URL(fileURLWithPath: root + "/config.json"))
        let port = try freeLoopbackPort()
        let common = ["--secret-file", root + "/secret", "--cluster-id", "json-log", "--log-format", "json"]
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--config", root + "/config.json",
            "--status-file", root + "/leader.json", "--load-rate", "2000", "--load-duration", "30", "--load-files", "2",
        ] + common, directory: root)
        let follower = try NodeProcess("f1", arguments: [
            "follower", "--data-dir", root + "/f1", "--leader", "127.0.0.1:\(port)", "--node-id", "f1", "--log-level", "warning",
        ] + common, directory: root)
        defer {
            follower.send(signal: SIGCONT)
            follower.killIfRunning()
            leader.killIfRunning()
        }
        try await waitUntil("f1 streams", brokers: [leader, follower], within: .seconds(60)) {
            LeaderStatusFile.read(root + "/leader.json")?.follower("f1")?.state == "live"
        }
        follower.send(signal: SIGSTOP)
        try await waitUntil("the leader evicts the frozen f1", brokers: [leader, follower], within: .seconds(60)) {
            (LeaderStatusFile.read(root + "/leader.json")?.evictions.values.reduce(0, +) ?? 0) >= 1
        }
        follower.send(signal: SIGCONT)
        leader.send(signal: SIGTERM)
        follower.send(signal: SIGTERM)
        _ = try await leader.waitForExit(timeout: .seconds(30))
        _ = try await follower.waitForExit(timeout: .seconds(30))

        let leaderLines = try Self.jsonLines(leader.logPath)
        #expect(leaderLines.allSatisfy { $0["time"] is String && $0["level"] is String && $0["label"] is String && $0["message"] is String })
        let eviction = try #require(leaderLines.first { $0["message"] as? String == "follower evicted" }, "\(leader.logTail())")
        let fields = try #require(eviction["metadata"] as? [String: Any])
        #expect(fields["follower"] as? String == "f1")
        #expect(["ack-timeout", "heartbeat-timeout"].contains(fields["reason"] as? String ?? ""), "\(fields)")
        #expect((fields["detail"] as? String ?? "").contains("outstanding") || (fields["detail"] as? String ?? "").contains("nothing heard"), "\(fields)")
        #expect(eviction["level"] as? String == "warning" || eviction["level"] as? String == "info" || eviction["level"] as? String == "notice", "\(eviction)")
        #expect(leaderLines.contains { $0["level"] as? String == "info" }, "the leader logs at info by default")

        let followerLines = try Self.jsonLines(follower.logPath)
        let belowWarning: Set<String> = ["trace", "debug", "info", "notice"]
        #expect(followerLines.allSatisfy { !belowWarning.contains($0["level"] as? String ?? "") }, "\(follower.logTail())")
    }
}
