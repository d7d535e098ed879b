import BrokerReplication
import BrokerReplicationTesting
import Foundation
import Logging
import Testing

@testable import BrokerReplicationEtcd

/// Runs `body` with a fresh etcd, stopped afterwards whether `body` succeeded or threw.
func withEtcd<T>(_ body: (EtcdTestServer) async throws -> T) async throws -> T {
    let etcd = try await EtcdTestServer.start()
    defer { etcd.stop() }
    return try await body(etcd)
}

/// A key prefix no other test uses.
func uniquePrefix(_ name: String) -> String {
    "/test-\(name)-\(UUID().uuidString.prefix(8))"
}

/// An election of `nodeID` under `prefix` in `etcd`.
func makeElection(
    _ etcd: EtcdTestServer,
    prefix: String,
    nodeID: String,
    leaseTTL: Duration = .seconds(10),
    requestTimeout: Duration = .seconds(2)
) throws -> EtcdElection {
    try EtcdElection(
        endpoint: EtcdEndpoint(url: etcd.url(prefix: prefix)),
        nodeID: nodeID,
        leaseTTL: leaseTTL,
        requestTimeout: requestTimeout,
        logger: ReplicationTestCluster.Workspace.logger
    )
}

/// What `nodeID` advertises when it campaigns.
func record(_ nodeID: String, port: Int = 9000) -> LeaderRecord {
    LeaderRecord(nodeID: nodeID, replicationHost: "127.0.0.1", replicationPort: port, clientAddress: "127.0.0.1:\(port + 1)")
}

/// Runs `body` while `election.run()` renews its lease in a child task, cancelled (and
/// awaited) when `body` returns or throws.
func whileRunning<T>(_ election: EtcdElection, _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await election.run() }
        defer { group.cancelAll() }
        return try await body()
    }
}

/// Revokes the lease the leader key is attached to, behind its holder's back (a raw
/// lease/revoke, as an operator or an expiry would end it).
func revokeLeaderLease(of election: EtcdElection) async throws {
    let current = try #require(try await election.client.get(election.leaderKey))
    #expect(current.lease != 0)
    try await election.client.revokeLease(current.lease)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// The ReplicationError `body` throws, or a recorded issue when it throws none or another.
func replicationError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> ReplicationError? {
    do {
        try await body()
        Issue.record("expected a ReplicationError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ReplicationError {
        return error
    } catch {
        Issue.record("expected a ReplicationError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
