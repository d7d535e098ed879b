import Foundation
import HeavyTestGate
import Testing

/// A `replication-node follower` started without `--node-id` takes the id stored in its data
/// directory, so a restart is the same node to the leader's in-sync set and to its metrics.
@Suite("Follower identity across restarts", .serialized, .heavy)
struct FollowerIdentityProcessTests {
    /// Starts a follower on `root/f` without `--node-id` (its leader need not exist: the id is
    /// chosen before it connects) and returns the node id its status file shows.
    static func nodeIDOfAFollowerStarted(in root: String, leaderPort: Int) async throws -> String {
        let node = try NodeProcess("follower", arguments: [
            "follower", "--data-dir", root + "/f", "--leader", "127.0.0.1:\(leaderPort)", "--secret-file", root + "/secret",
            "--cluster-id", "identity-test", "--status-file", root + "/f.json",
        ], directory: root)
        defer { node.killIfRunning() }
        try? FileManager.default.removeItem(atPath: root + "/f.json")
        var status: FollowerStatusFile?
        let deadline = ContinuousClock.now + .seconds(60)
        while status == nil, ContinuousClock.now < deadline, node.isRunning {
            status = FollowerStatusFile.read(root + "/f.json")
            if status == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let shown = try #require(status, "no status file within 60 s\n\(node.logTail())")
        node.send(signal: SIGTERM)
        _ = try await node.waitForExit(timeout: .seconds(30))
        return shown.nodeID
    }

    @Test func aFollowerWithoutANodeIDKeepsTheStoredOneAcrossRestarts() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("identity-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data("identity-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
        let port = try freeLoopbackPort()

        let first = try await Self.nodeIDOfAFollowerStarted(in: root, leaderPort: port)
        #expect(first.hasPrefix("follower-") && first.count == "follower-".count + 12, "\(first)")
        let stored = try String(contentsOfFile: root + "/f/.brpl/node-id", encoding: .utf8)
        #expect(stored == first + "\n")
        let second = try await Self.nodeIDOfAFollowerStarted(in: root, leaderPort: port)
        #expect(second == first, "a restarted follower is the same node")
        // An operator may name the node in the file.
        try Data("f-by-hand\n".utf8).write(to: URL(fileURLWithPath: root + "/f/.brpl/node-id"))
        #expect(try await Self.nodeIDOfAFollowerStarted(in: root, leaderPort: port) == "f-by-hand")
    }
}
