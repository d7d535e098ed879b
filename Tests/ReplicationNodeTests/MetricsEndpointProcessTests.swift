import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--metrics`: a follower's `/health` follows its link, and the leader's `/metrics` shows a
/// capped follower falling behind; real processes, the follower dialing through a fault proxy.
@Suite("Metrics and health process", .serialized, .heavy)
struct MetricsEndpointProcessTests {
    /// The value of the series `name{labels}` in a Prometheus text page, labels in order.
    static func value(_ page: String, _ name: String, _ labels: String) -> Double? {
        let prefix = "\(name){\(labels)} "
        return page.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    /// A directory with a secret and a replication config of short heartbeats, removed by the caller.
    static func workspace(_ settings: String) throws -> (root: String, common: [String]) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replication-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("process-test-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
        try Data(settings.utf8).write(to: URL(fileURLWithPath: root + "/replication.json"))
        return (root, ["--secret-file", root + "/secret", "--cluster-id", "metrics-test", "--config", root + "/replication.json"])
    }

    @Test func followerHealthFlipsTo503WhenItsLeaderIsBlackHoledAndBackOnceItStreams() async throws {
        // The follower gives up on a silent leader after 2 s.
        let (root, common) = try Self.workspace(#"{"heartbeatIntervalSeconds": 0.5, "heartbeatTimeoutSeconds": 2}"#)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (port, leaderMetrics, followerMetrics) = (try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort())
        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.killIfRunning() } }
        let logs = { nodes.map { $0.logTail() }.joined(separator: "\n") }
        nodes.append(try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--metrics", "127.0.0.1:\(leaderMetrics)",
        ] + common, directory: root))
        let proxy = FaultInjectingProxy(upstreamPort: port)
        let proxyPort = try await proxy.start()
        nodes.append(try NodeProcess("follower", arguments: [
            "follower", "--data-dir", root + "/follower", "--leader", "127.0.0.1:\(proxyPort)", "--node-id", "f1",
            "--metrics", "127.0.0.1:\(followerMetrics)",
        ] + common, directory: root))
        func health(_ port: Int) -> LoopbackHTTP.Response? { try? LoopbackHTTP.request("GET", "/health", port: port) }

        try await eventually("the leader is healthy", logs: logs) { health(leaderMetrics)?.status == 200 }
        #expect(health(leaderMetrics)?.body == #"{"role":"leader","status":"ok"}"# + "\n")
        try await eventually("the follower streams: 200", logs: logs) { health(followerMetrics)?.status == 200 }
        #expect(health(followerMetrics)?.body == #"{"role":"follower","status":"ok"}"# + "\n")
        let page = try LoopbackHTTP.request("GET", "/metrics", port: followerMetrics)
        #expect(page.status == 200)
        #expect(Self.value(page.body, "brpl_follower_phase", #"follower="f1",phase="streaming""#) == 1, "\(page.body)")
        #expect(try LoopbackHTTP.request("GET", "/nowhere", port: followerMetrics).status == 404)
        #expect(try LoopbackHTTP.request("POST", "/health", port: followerMetrics).status == 405)

        proxy.set(.init(blackHole: true))
        var unhealthy: LoopbackHTTP.Response?
        try await eventually("the black-holed follower: 503", logs: logs) {
            unhealthy = health(followerMetrics)
            return unhealthy?.status == 503
        }
        let answer = try #require(unhealthy)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: String])
        #expect(body["status"] == "unhealthy" && body["role"] == "follower")
        #expect(body["reason"]?.hasPrefix("connecting") == true || body["reason"]?.hasPrefix("syncing") == true, "\(body)")

        proxy.set(.none)
        try await eventually("streaming again: 200", logs: logs) { health(followerMetrics)?.status == 200 }
        await proxy.stop()
        for node in nodes { node.send(signal: SIGTERM) }
        for node in nodes { _ = try await node.waitForExit(timeout: .seconds(15)) }
    }

    @Test func theLeadersMetricsShowACappedFollowersLagGrowing() async throws {
        let (root, common) = try Self.workspace("{}")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (port, leaderMetrics, followerMetrics) = (try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort())
        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.killIfRunning() } }
        let logs = { nodes.map { $0.logTail() }.joined(separator: "\n") }
        let proxy = FaultInjectingProxy(upstreamPort: port)
        let proxyPort = try await proxy.start()
        proxy.set(.init(bytesPerSecond: 64 * 1024), for: .serverToClient)
        // About 1.5 MB/s of broker-like events for 30 s, against a follower capped at 64 KiB/s.
        nodes.append(try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--listen", "127.0.0.1:\(port)", "--metrics", "127.0.0.1:\(leaderMetrics)",
            "--load-rate", "10000", "--load-duration", "30", "--load-files", "4",
        ] + common, directory: root))
        nodes.append(try NodeProcess("slow", arguments: [
            "follower", "--data-dir", root + "/slow", "--leader", "127.0.0.1:\(proxyPort)", "--node-id", "slow",
            "--metrics", "127.0.0.1:\(followerMetrics)",
        ] + common, directory: root))
        func lag(_ series: String, port: Int) -> Double? {
            (try? LoopbackHTTP.request("GET", "/metrics", port: port)).flatMap { Self.value($0.body, series, #"follower="slow""#) }
        }

        var first = 0.0
        try await eventually("the leader reports a lag", logs: logs) {
            first = lag("brpl_follower_lag_bytes", port: leaderMetrics) ?? 0
            return first > 0
        }
        try await eventually("the lag grows past 1 MiB beyond the first sample", logs: logs) {
            (lag("brpl_follower_lag_bytes", port: leaderMetrics) ?? 0) > first + 1_048_576
        }
        #expect((lag("brpl_follower_lag_lsns", port: leaderMetrics) ?? 0) > 0)
        // The follower reports its own view under the same names (its lag is as of the
        // leader's last heartbeat, which a busy link may delay: only its presence is checked).
        try await eventually("the follower's own lag series", logs: logs) { lag("brpl_follower_lag_lsns", port: followerMetrics) != nil }
        await proxy.stop()
        for node in nodes { node.send(signal: SIGKILL) }
    }
}
