import BrokerReplicationTesting
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Three (or more) `mini-broker node` processes and the real etcd that elects their leader,
/// in one temporary directory.
final class MiniBrokerCluster {
    /// The etcd lease of every node: failover waits this long for a dead leader.
    static let leaseTTL = 3
    /// Short link timeouts, so that a frozen follower leaves the in-sync set in seconds.
    static let settings = #"{"ackTimeoutSeconds": 1, "heartbeatIntervalSeconds": 0.25, "heartbeatTimeoutSeconds": 2, "maxLagTimeSeconds": 2, "reconnectCapSeconds": 1}"#

    struct Node {
        var name: String
        var httpPort: Int
        var replicationPort: Int
    }

    let root: String
    let etcd: EtcdTestServer
    let nodes: [Node]
    /// The running process of each node, by name (nil once it was killed and not restarted).
    private(set) var processes: [String: NodeProcess] = [:]

    init(nodeNames: [String]) async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("mini-broker-ha-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("mini-broker-ha-test-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
        try Data(Self.settings.utf8).write(to: URL(fileURLWithPath: root + "/settings.json"))
        etcd = try await EtcdTestServer.start()
        nodes = try nodeNames.map { Node(name: $0, httpPort: try freeLoopbackPort(), replicationPort: try freeLoopbackPort()) }
    }

    /// Kills what still runs and removes the directory.
    func tearDown() {
        for process in processes.values { process.killIfRunning() }
        etcd.resume()
        etcd.stop()
        try? FileManager.default.removeItem(atPath: root)
    }

    func node(_ name: String) -> Node { nodes.first { $0.name == name }! }

    var running: [NodeProcess] { processes.values.filter { $0.isRunning } }

    func dataDirectory(_ name: String) -> String { root + "/" + name }

    /// Starts (or restarts) `name` with the exact command line Docs/Operations.md documents.
    func start(_ name: String) throws {
        let node = node(name)
        let restarts = (try? FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(name + "-run") }.count) ?? 0
        processes[name] = try NodeProcess("\(name)-run\(restarts + 1)", arguments: [
            "node", "--data-dir", dataDirectory(name), "--http", "127.0.0.1:\(node.httpPort)",
            "--replication", "127.0.0.1:\(node.replicationPort)", "--node-id", name,
            "--secret-file", root + "/secret", "--coordinator", etcd.url(prefix: "/mini-broker-test"),
            "--config", root + "/settings.json", "--lease-ttl", "\(Self.leaseTTL)", "--segment-bytes", "16384",
        ], directory: root, executable: "mini-broker")
    }

    func signal(_ name: String, _ number: Int32) {
        processes[name]?.send(signal: number)
    }

    /// SIGKILLs `name` and waits until it is gone.
    func kill(_ name: String) async throws {
        signal(name, SIGKILL)
        _ = try await processes[name]?.waitForExit(timeout: .seconds(10))
    }

    /// `GET /status` of `name`, nil when it does not answer.
    func status(_ name: String) -> NodeStatusReply? {
        try? LoopbackHTTP.get(NodeStatusReply.self, "/status", port: node(name).httpPort)
    }

    /// The node every answering node agrees leads, with all of `followers` following it.
    func leader(among names: [String]) -> String? {
        let statuses = names.compactMap { status($0) }
        guard statuses.count == names.count else { return nil }
        let leaders = statuses.filter { $0.role == "leader" }
        guard leaders.count == 1, statuses.allSatisfy({ $0.leader == leaders[0].nodeID }) else { return nil }
        return leaders[0].nodeID
    }

    /// Publishes `message` to `queue` on `name`; the HTTP answer, nil when the node does not answer.
    func publish(_ message: [UInt8], to queue: String, on name: String) -> LoopbackHTTP.Response? {
        try? LoopbackHTTP.request("POST", "/queues/\(queue)", body: message, port: node(name).httpPort)
    }

    func logs() -> String {
        processes.values.map { $0.logTail(lines: 40) }.joined(separator: "\n")
    }
}

/// The fields of `mini-broker node`'s `GET /status` these tests read.
struct NodeStatusReply: Decodable {
    struct Leading: Decodable {
        var isr: [String]
        var lastLSN: UInt64
    }

    var role: String
    var nodeID: String
    var epoch: UInt64
    var leader: String?
    var leaderClientAddress: String?
    var notEligible: String?
    var leaderStatus: Leading?
}

/// The records of one queue in a data directory: its segment files in order, each record a
/// 4-byte big-endian length and the message.
func queueRecords(_ queue: String, in files: [String: Data]) -> [[UInt8]] {
    let segments = files.keys.filter { $0.hasPrefix("queues/\(queue)/segment-") }
        .sorted { Int($0.split(separator: "-").last!)! < Int($1.split(separator: "-").last!)! }
    var records: [[UInt8]] = []
    var bytes = segments.flatMap { [UInt8](files[$0]!) }[...]
    while bytes.count >= 4 {
        let length = bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        records.append(Array(bytes.dropFirst(4).prefix(length)))
        bytes = bytes.dropFirst(4 + length)
    }
    return records
}
