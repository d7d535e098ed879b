import BrokerReplication
import Foundation
import NIOCore
import NIOHTTP1
import Prometheus

/// What the broker answers over HTTP: publishing on the leader, status and metrics on both roles.
struct BrokerRoutes: Sendable {
    enum Role: Sendable {
        case leader(ReplicationLeader, QueueSegments)
        case follower(ReplicationFollower)
        /// A node of an HA cluster: it publishes while it leads.
        case node(ClusterNode, NodeSegments)
    }

    let role: Role
    let registry: PrometheusCollectorRegistry

    @Sendable func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        switch (request.method, path) {
        case (.GET, "/status"):
            return status()
        case (.GET, "/metrics"):
            return HTTPResponse(.ok, registry.emitToString(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case (.POST, _) where path.hasPrefix("/queues/"):
            return await publish(queue: String(path.dropFirst("/queues/".count)), message: request.body)
        default:
            return HTTPResponse(.notFound, "no route for \(request.method) \(path)\n")
        }
    }

    /// Appends the message to its queue's segment file, then waits for the publisher confirm.
    ///
    /// Each record is the message's length (4 bytes, big-endian) followed by its bytes.
    private func publish(queue: String, message: ByteBuffer) async -> HTTPResponse {
        let leader: ReplicationLeader
        let segments: QueueSegments
        switch role {
        case .leader(let own, let queues):
            (leader, segments) = (own, queues)
        case .follower:
            return HTTPResponse(.misdirectedRequest, "this node is a follower: publish to the leader\n")
        case .node(let node, let queues):
            guard let own = node.leader else { return notLeader(node, "this node does not lead") }
            (leader, segments) = (own, queues.segments(for: own))
        }
        var record = ByteBuffer()
        record.writeInteger(UInt32(message.readableBytes))
        record.writeImmutableBuffer(message)
        do {
            let path = try segments.segment(for: queue, recordBytes: record.readableBytes)
            let lsn = try await leader.append(to: path, bytes: record)
            try await leader.waitForReplication(upTo: lsn)
            return HTTPResponse(.ok, #"{"lsn":\#(lsn)}"# + "\n", contentType: "application/json")
        } catch let error as QueueNameError {
            return HTTPResponse(.badRequest, error.description + "\n")
        } catch let error as ReplicationError where error.code == .notEnoughReplicas {
            return HTTPResponse(.serviceUnavailable, error.message + "\n")
        } catch let error as ReplicationError where error.code == .notLeader {
            guard case .node(let node, _) = role else { return HTTPResponse(.serviceUnavailable, error.message + "\n") }
            return notLeader(node, error.message)
        } catch {
            return HTTPResponse(.internalServerError, "\(error)\n")
        }
    }

    /// A node that does not lead: 421 when another node leads (the answer names it), 503
    /// while no node leads; JSON `{"error", "leader", "leaderHTTP"}` either way.
    private func notLeader(_ node: ClusterNode, _ error: String) -> HTTPResponse {
        let status = node.status()
        let someoneElseLeads = status.leader != nil && status.leader != status.nodeID
        let answer = NotLeaderAnswer(error: error, leader: someoneElseLeads ? status.leader : nil, leaderHTTP: someoneElseLeads ? status.leaderClientAddress : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(answer)).map { String(decoding: $0, as: UTF8.self) } ?? #"{"error":"not the leader"}"#
        return HTTPResponse(someoneElseLeads ? .misdirectedRequest : .serviceUnavailable, json + "\n", contentType: "application/json")
    }

    /// `status()` of this node's role as JSON, with `"role"` added.
    private func status() -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json: Data?
        switch role {
        case .node(let node, _): json = try? encoder.encode(node.status())
        case .leader(let leader, _): json = try? encoder.encode(RoleStatus(role: "leader", status: leader.status()))
        case .follower(let follower): json = try? encoder.encode(RoleStatus(role: "follower", status: follower.status()))
        }
        guard let json else { return HTTPResponse(.internalServerError, "cannot encode the status\n") }
        return HTTPResponse(.ok, String(decoding: json, as: UTF8.self) + "\n", contentType: "application/json")
    }
}

/// What a node that does not lead answers to a publish; `leader` and `leaderHTTP` are null
/// when no other node is known to lead.
private struct NotLeaderAnswer: Encodable {
    var error: String
    var leader: String?
    var leaderHTTP: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(error, forKey: .error)
        try container.encode(leader, forKey: .leader)
        try container.encode(leaderHTTP, forKey: .leaderHTTP)
    }

    private enum CodingKeys: String, CodingKey { case error, leader, leaderHTTP }
}

/// A status snapshot with the node's role as one more top-level key.
private struct RoleStatus<Status: Encodable>: Encodable {
    var role: String
    var status: Status

    private enum CodingKeys: String, CodingKey { case role }

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
    }
}
