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
        guard case .leader(let leader, let segments) = role else {
            return HTTPResponse(.misdirectedRequest, "this node is a follower: publish to the leader\n")
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
        } catch {
            return HTTPResponse(.internalServerError, "\(error)\n")
        }
    }

    /// `status()` of this node's role as JSON, with `"role"` added.
    private func status() -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json: Data?
        switch role {
        case .leader(let leader, _): json = try? encoder.encode(RoleStatus(role: "leader", status: leader.status()))
        case .follower(let follower): json = try? encoder.encode(RoleStatus(role: "follower", status: follower.status()))
        }
        guard let json else { return HTTPResponse(.internalServerError, "cannot encode the status\n") }
        return HTTPResponse(.ok, String(decoding: json, as: UTF8.self) + "\n", contentType: "application/json")
    }
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
