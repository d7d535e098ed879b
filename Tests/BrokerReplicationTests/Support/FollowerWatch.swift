import Synchronization

@_spi(Benchmarks) @testable import BrokerReplication

/// Samples, every 2 ms, the highest LSN the leader saw a follower ack, the highest LSN the
/// follower reported durable, and every distinct error it reported.
final class FollowerWatch: Sendable {
    struct Seen: Sendable {
        var highestAck: UInt64 = 0
        var highestDurable: UInt64 = 0
        var errors: [String] = []
    }

    let name: String
    let leader: ReplicationLeader
    let follower: ReplicationFollower
    private let seen = Mutex(Seen())

    init(name: String, leader: ReplicationLeader, follower: ReplicationFollower) {
        self.name = name
        self.leader = leader
        self.follower = follower
    }

    func run() async {
        while !Task.isCancelled {
            sample()
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    private func sample() {
        let acked = leader.status().followers.filter { $0.nodeID == name }.map(\.ackedLSN).max() ?? 0
        let status = follower.status()
        seen.withLock { seen in
            seen.highestAck = max(seen.highestAck, acked)
            seen.highestDurable = max(seen.highestDurable, status.lastDurableLSN)
            if let error = status.lastError, !seen.errors.contains(error) { seen.errors.append(error) }
        }
    }

    func snapshot() -> Seen {
        sample()
        return seen.withLock { $0 }
    }
}
