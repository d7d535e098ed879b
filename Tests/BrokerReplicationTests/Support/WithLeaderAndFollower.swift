@_spi(Benchmarks) @testable import BrokerReplicationTesting
import BrokerReplication

/// Runs `body` with a serving leader and cancels everything afterwards.
func withLeader(
    _ cluster: ReplicationTestCluster.Workspace,
    configure: (inout ReplicationLeaderConfiguration) -> Void = { _ in },
    _ body: (ReplicationLeader, Int) async throws -> Void
) async throws {
    var configuration = cluster.leaderConfiguration()
    configure(&configuration)
    let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await leader.run() }
        let port = try await leader.listeningPort()
        defer { group.cancelAll() }
        try await body(leader, port)
    }
}

/// Runs a follower in its own task until `body` returns.
func withFollower(
    _ cluster: ReplicationTestCluster.Workspace,
    _ name: String,
    port: Int,
    configure: (inout ReplicationFollowerConfiguration) -> Void = { _ in },
    _ body: (ReplicationFollower) async throws -> Void
) async throws {
    var configuration = cluster.followerConfiguration(name, port: port)
    configure(&configuration)
    let follower = try ReplicationFollower(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await follower.run() }
        defer { group.cancelAll() }
        try await body(follower)
    }
}
