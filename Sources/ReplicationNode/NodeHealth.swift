import BrokerReplication
import Foundation
import Synchronization

/// What `GET /health` answers: healthy while the leader listens or the follower streams.
///
/// The decision is a pure function of a status snapshot, so it is tested without sockets.
struct NodeHealth: Equatable, Sendable {
    /// "leader" or "follower".
    var role: String
    /// Nil when healthy; otherwise why not, for a person: the phase and the last error.
    var reason: String?

    var isHealthy: Bool { reason == nil }

    /// A follower is healthy only while streaming; connecting or syncing, it names the phase,
    /// and the reason the last connection ended, if one did.
    static func follower(_ status: ReplicationFollower.FollowerStatus) -> NodeHealth {
        if status.phase == .streaming { return NodeHealth(role: "follower", reason: nil) }
        let why = status.lastError.map { " (last connection: \($0))" } ?? ""
        return NodeHealth(role: "follower", reason: "\(status.phase.rawValue)\(why)")
    }

    static func leader(listening: Bool) -> NodeHealth {
        NodeHealth(role: "leader", reason: listening ? nil : "not listening for followers yet")
    }

    /// `{"role":"follower","status":"ok"}` or `{"reason":"…","role":"…","status":"unhealthy"}`.
    var json: String {
        var body = ["status": isHealthy ? "ok" : "unhealthy", "role": role]
        body["reason"] = reason
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// The node whose health `/health` reports: the follower, or the leader it became by promotion.
final class HealthSource: Sendable {
    private enum Node {
        case starting
        case follower(ReplicationFollower)
        case leader(ReplicationLeader, listening: Bool)
    }

    private let node = Mutex(Node.starting)

    func report(_ follower: ReplicationFollower) {
        node.withLock { $0 = .follower(follower) }
    }

    /// Reports `leader`, unhealthy until it listens.
    func report(_ leader: ReplicationLeader) async {
        node.withLock { $0 = .leader(leader, listening: false) }
        guard (try? await leader.listeningPort()) != nil else { return }
        node.withLock { node in
            if case .leader(let current, _) = node, current === leader { node = .leader(leader, listening: true) }
        }
    }

    /// The health now; the follower's status is read outside the lock.
    func current() -> NodeHealth {
        switch node.withLock({ $0 }) {
        case .starting: NodeHealth(role: "node", reason: "starting")
        case .follower(let follower): .follower(follower.status())
        case .leader(_, let listening): .leader(listening: listening)
        }
    }
}
