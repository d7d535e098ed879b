import HeavyTestGate
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `mini-broker` example (Examples/MiniBroker) as real processes, driven over HTTP.
@Suite("mini-broker example", .serialized, .heavy)
struct MiniBrokerTests {
    @Test func publishesWithConfirmsReplicatesServesStatusAndMetricsAndStopsOnSIGTERM() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mini-broker-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data("mini-broker-test-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
        let (leaderHTTP, replication, followerHTTP) = (try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort())

        let leader = try NodeProcess("leader", arguments: [
            "leader", "--data-dir", root + "/leader", "--http", "127.0.0.1:\(leaderHTTP)",
            "--replication", "127.0.0.1:\(replication)", "--secret-file", root + "/secret", "--segment-bytes", "16384",
        ], directory: root, executable: "mini-broker")
        let follower = try NodeProcess("follower", arguments: [
            "follower", "--data-dir", root + "/f1", "--http", "127.0.0.1:\(followerHTTP)",
            "--leader", "127.0.0.1:\(replication)", "--secret-file", root + "/secret", "--node-id", "f1",
        ], directory: root, executable: "mini-broker")
        let brokers = [leader, follower]
        defer { for broker in brokers { broker.killIfRunning() } }
        let logs = { brokers.map { $0.logTail() }.joined(separator: "\n") }

        // Once f1 is in the leader's in-sync set, every confirm below waits for its durable ack.
        try await waitUntil("f1 is in the leader's in-sync set", brokers: brokers) {
            (try? LoopbackHTTP.get(StatusReply.self, "/status", port: leaderHTTP))?.isr == ["f1"]
        }

        // A few hundred messages over three queues, each answered after its confirm.
        let queues = ["orders", "audit", "billing"]
        var sent: [String: [[UInt8]]] = [:]
        var lastLSN: UInt64 = 0
        for index in 0..<300 {
            let queue = queues[index % queues.count]
            let message = Array("message \(index) ".utf8) + Array(repeating: UInt8(ascii: "a") + UInt8(index % 26), count: index * 37 % 600)
            let response = try LoopbackHTTP.request("POST", "/queues/\(queue)", body: message, port: leaderHTTP)
            try #require(response.status == 200, "message \(index): \(response.status) \(response.body)\n\(logs())")
            let lsn = try JSONDecoder().decode(PublishReply.self, from: Data(response.body.utf8)).lsn
            #expect(lsn > lastLSN, "message \(index) got LSN \(lsn) after \(lastLSN)")
            lastLSN = lsn
            sent[queue, default: []].append(message)
        }
        let badName = try LoopbackHTTP.request("POST", "/queues/no%20spaces", body: Array("x".utf8), port: leaderHTTP)
        #expect(badName.status == 400 && badName.body.contains("queue name"), "\(badName)")
        #expect(try LoopbackHTTP.request("POST", "/queues/orders", body: [1], port: followerHTTP).status == 421)

        // The leader's segments hold every message in order, length-prefixed, and have rolled.
        let leaderFiles = try dataFiles(under: root + "/leader")
        for queue in queues {
            let segments = leaderFiles.keys.filter { $0.hasPrefix("queues/\(queue)/segment-") }
                .sorted { Int($0.split(separator: "-").last!)! < Int($1.split(separator: "-").last!)! }
            #expect(segments.count > 1, "\(queue) did not roll: \(segments)")
            var records: [[UInt8]] = []
            var bytes = segments.flatMap { [UInt8](leaderFiles[$0]!) }[...]
            while bytes.count >= 4 {
                let length = bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
                records.append(Array(bytes.dropFirst(4).prefix(length)))
                bytes = bytes.dropFirst(4 + length)
            }
            #expect(records == sent[queue], "\(queue): the segments hold \(records.count) records, \(sent[queue]?.count ?? 0) were sent")
        }

        // The follower holds byte-identical segment files.
        try await waitUntil("the follower's files equal the leader's", brokers: brokers) {
            (try? dataFiles(under: root + "/f1")) == leaderFiles
        }

        let leaderStatus = try LoopbackHTTP.get(StatusReply.self, "/status", port: leaderHTTP)
        #expect(leaderStatus.role == "leader" && leaderStatus.isr?.contains("f1") == true && leaderStatus.lastLSN == lastLSN, "\(leaderStatus)")
        let followerStatus = try LoopbackHTTP.get(StatusReply.self, "/status", port: followerHTTP)
        #expect(followerStatus.role == "follower" && followerStatus.lastDurableLSN == lastLSN, "\(followerStatus)")

        // Gauges are sampled every 500 ms; the acked-bytes counter moves with each ack.
        try await waitUntil("the leader's metrics show f1's acked bytes and an ISR of 1", brokers: brokers) {
            let metrics = (try? LoopbackHTTP.request("GET", "/metrics", port: leaderHTTP).body) ?? ""
            let lines = metrics.split(separator: "\n")
            return lines.contains { $0.hasPrefix("brpl_follower_acked_bytes_total{follower=\"f1\"} ") && !$0.hasSuffix(" 0") }
                && lines.contains { $0 == "brpl_isr_size 1" || $0 == "brpl_isr_size 1.0" }
        }
        // The follower reports its own replication: streaming, with what it applied.
        try await waitUntil("the follower's metrics show it streaming and applying", brokers: brokers) {
            let metrics = (try? LoopbackHTTP.request("GET", "/metrics", port: followerHTTP).body) ?? ""
            let lines = metrics.split(separator: "\n")
            return lines.contains { $0.hasPrefix("brpl_follower_phase{follower=\"f1\",phase=\"streaming\"} 1") }
                && lines.contains { $0.hasPrefix("brpl_follower_applied_bytes_total{follower=\"f1\"} ") && !$0.hasSuffix(" 0") }
        }

        for broker in brokers { broker.send(signal: SIGTERM) }
        for broker in brokers {
            let status = try await broker.waitForExit(timeout: .seconds(15))
            #expect(status == 0, "\(broker.name) did not exit with status 0 within 15 s of SIGTERM\n\(broker.logTail())")
        }
    }
}

/// The body of a 200 answer to a publish.
private struct PublishReply: Decodable {
    var lsn: UInt64
}

/// The parts of `GET /status` these tests read, of either role.
private struct StatusReply: Decodable {
    var role: String
    var isr: [String]?
    var lastLSN: UInt64?
    var lastDurableLSN: UInt64?
}
