import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A follower capped far below the write rate, under load. The leader process
/// evicts it instead of waiting, finishes its load, and its memory stays within the queue
/// and backlog bounds plus a fixed margin.
@Suite("Slow follower process", .serialized, .heavy)
struct SlowFollowerProcessTests {
    /// Peak resident memory of a process (VmHWM), in bytes.
    static func peakRSS(of pid: Int32?) -> Int? {
        guard let pid else { return nil }
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { return nil }
        return kilobytes * 1024
    }

    @Test func aCappedFollowerIsEvictedAndTheLeaderStaysWithinItsMemoryBounds() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretFile = root + "/secret"
        try Data("process-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        let queueBytes = 9 << 18  // 2.25 MiB, near the smallest allowed
        let backlogBytes = 16 << 20
        let configFile = root + "/replication.json"
        try Data(#"{"queueBytes": \#(queueBytes), "backlogBytes": \#(backlogBytes)}"#.utf8).write(to: URL(fileURLWithPath: configFile))
        let port = try freeLoopbackPort()
        let common = ["--secret-file", secretFile, "--cluster-id", "slow-test", "--config", configFile]

        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.killIfRunning() } }
        let logs = { nodes.map { $0.logTail() }.joined(separator: "\n") }
        // About 3 MB/s of broker-like events for 12 s, against a follower capped at 16 KiB/s.
        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--status-file", root + "/leader.json",
            "--load-rate", "20000", "--load-duration", "12", "--load-files", "4",
        ] + common, directory: root)
        nodes.append(leader)
        let proxy = FaultInjectingProxy(upstreamPort: port)
        let proxyPort = try await proxy.start()
        proxy.set(.init(bytesPerSecond: 16 * 1024), for: .serverToClient)
        for (name, target) in [("healthy", port), ("slow", proxyPort)] {
            nodes.append(try NodeProcess(name, arguments: [
                "follower", "--data-dir", root + "/" + name, "--leader", "127.0.0.1:\(target)", "--node-id", name,
                "--status-file", root + "/\(name).json",
            ] + common, directory: root))
        }
        func leaderStatus() -> LeaderStatusFile? {
            LeaderStatusFile.read(root + "/leader.json")
        }
        func durable(_ name: String) -> UInt64 {
            FollowerStatusFile.read(root + "/\(name).json")?.lastDurableLSN ?? 0
        }

        var peak = 0
        try await eventually("the slow follower is evicted", logs: logs) {
            peak = max(peak, Self.peakRSS(of: leader.processIdentifier) ?? 0)
            return leaderStatus()?.evictions.isEmpty == false
        }
        try await eventually("the load finishes", logs: logs) {
            peak = max(peak, Self.peakRSS(of: leader.processIdentifier) ?? 0)
            return leaderStatus()?.loadFinished == true
        }
        let last = leaderStatus()?.lastLSN ?? 0
        try await eventually("the healthy follower holds everything", logs: logs) { durable("healthy") >= last }
        // Its queue fills first. Reconnected behind the same cap, it may also miss an ack deadline,
        // or say nothing for the heartbeat timeout while one large frame (a sync chunk) trickles
        // in at 16 KiB/s: each is the leader giving up on a follower that cannot keep up.
        let reasons = Set(leaderStatus()?.evictions.keys.map { $0 } ?? [])
        #expect(reasons.isSubset(of: ["queue-full", "ack-timeout", "heartbeat-timeout", "backlog-exceeded"]) && !reasons.isEmpty, "\(reasons)")
        peak = max(peak, Self.peakRSS(of: leader.processIdentifier) ?? 0)
        // Frames are shared by the queues and the backlog; the margin covers the process itself.
        let bound = queueBytes + backlogBytes + 64 << 20
        #expect(peak > 0 && peak <= bound, "leader peak RSS \(peak >> 20) MiB, bound \(bound >> 20) MiB")
        print("slow follower: leader peak RSS \(peak >> 20) MiB (bound \(bound >> 20) MiB), evictions \(leaderStatus()?.evictions ?? [:]), \(last) records")

        // Without the cap the slow follower catches up and holds what the leader holds.
        proxy.set(.none)
        try await eventually("the slow follower converges once uncapped", logs: logs) { durable("slow") >= last }
        #expect(try dataFiles(under: root + "/slow") == dataFiles(under: root + "/leader"))
        await proxy.stop()
        for node in nodes { node.send(signal: SIGTERM) }
        for node in nodes { _ = try await node.waitForExit(timeout: .seconds(10)) }
    }
}
