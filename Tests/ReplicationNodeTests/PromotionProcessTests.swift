import HeavyTestGate
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A leader process killed right after its last confirm; a follower process of the in-sync set
/// is promoted with SIGUSR1 and serves the other follower.
@Suite("replication-node promotion", .serialized, .heavy)
struct PromotionProcessTests {
    @Test func aFollowerPromotedAfterTheLeaderIsKilledHoldsEveryConfirmedRecordAndServesTheOther() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretFile = root + "/secret"
        try Data("process-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        let oldPort = try freeLoopbackPort()
        let newPort = try freeLoopbackPort()
        let coordinatorFile = root + "/leader/.brpl/coordinator.json"
        let common = ["--secret-file", secretFile, "--cluster-id", "promotion-test"]

        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.killIfRunning() } }
        let logs = { nodes.map { $0.logTail() }.joined(separator: "\n") }
        func follower(_ name: String, leaderPort: Int) throws -> NodeProcess {
            let node = try NodeProcess(name, arguments: [
                "follower", "--data-dir", root + "/" + name, "--leader", "127.0.0.1:\(leaderPort)", "--node-id", name,
                "--status-file", root + "/\(name).json", "--coordinator", coordinatorFile, "--promote-listen", "127.0.0.1:\(newPort)",
            ] + common, directory: root)
            nodes.append(node)
            return node
        }
        func leaderStatus(_ name: String) -> LeaderStatusFile? { LeaderStatusFile.read(root + "/\(name).json") }
        func followerStatus(_ name: String) -> FollowerStatusFile? { FollowerStatusFile.read(root + "/\(name).json") }

        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(oldPort)", "--status-file", root + "/leader.json",
            "--load-rate", "4000", "--load-duration", "2", "--load-files", "4", "--load-confirm",
        ] + common, directory: root)
        nodes.append(leader)
        let f1 = try follower("f1", leaderPort: oldPort)
        var f2 = try follower("f2", leaderPort: oldPort)

        // Every record is confirmed once the load has finished and the confirmed LSN is the last.
        try await eventually("the leader confirms its whole load with f1 and f2 in sync", logs: logs) {
            guard let leader = leaderStatus("leader") else { return false }
            return leader.loadFinished && leader.lastLSN > 0 && leader.confirmedLSN == leader.lastLSN && leader.isr == ["f1", "f2"]
        }
        leader.send(signal: SIGKILL)
        _ = try await leader.waitForExit(timeout: .seconds(10))
        let confirmed = try dataFiles(under: root + "/leader")
        #expect(confirmed.count == 4)

        f1.send(signal: SIGUSR1)
        try await eventually("f1 serves as leader", logs: logs) { leaderStatus("f1")?.role == "leader" }
        #expect(try dataFiles(under: root + "/f1") == confirmed, "the promoted follower lacks confirmed records")

        // f2 is pointed at the new leader (a broker would learn it from its own discovery).
        f2.send(signal: SIGTERM)
        #expect(try await f2.waitForExit(timeout: .seconds(10)) == 0)
        f2 = try follower("f2", leaderPort: newPort)
        try await eventually("f2 joins the new leader's in-sync set", logs: logs) {
            leaderStatus("f1")?.isr == ["f2"] && followerStatus("f2")?.phase == "streaming" && followerStatus("f2")?.epoch == 2
        }
        #expect(try dataFiles(under: root + "/f2") == confirmed)
        for node in [f1, f2] { node.send(signal: SIGTERM) }
        for node in [f1, f2] {
            let exit = try await node.waitForExit(timeout: .seconds(10))
            #expect(exit == 0, "\(node.name) did not stop cleanly\n\(node.logTail())")
        }
    }
}
