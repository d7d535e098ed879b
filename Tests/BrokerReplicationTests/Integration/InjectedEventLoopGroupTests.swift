import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import NIOPosix
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A broker that runs its own `EventLoopGroup` passes it to the leader and the follower, and
/// their connections run there, not on SwiftNIO's singleton.
@Suite("Injected event-loop group", .serialized, .heavy)
struct InjectedEventLoopGroupTests {
    /// Nanoseconds the group's threads have run so far, from Linux's per-thread
    /// `/proc/self/task/<tid>/schedstat`; the threads are found by the names NIO gives them.
    static func cpuNanoseconds(of group: MultiThreadedEventLoopGroup) throws -> UInt64 {
        // "MultiThreadedEventLoopGroup { threadPattern = NIO-ELT-7-#* }": its threads are NIO-ELT-7-#<n>.
        let prefix = String(try #require(group.description.split(separator: "= ").last?.split(separator: "*").first))
        var total: UInt64 = 0
        var found = false
        for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") {
            let comm = ((try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard comm.hasPrefix(prefix) else { continue }
            let schedstat = try String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8)
            total += try #require(schedstat.split(separator: " ").first.flatMap { UInt64($0) })
            found = true
        }
        #expect(found, "no thread named \(prefix)*")
        return total
    }

    @Test func theLeaderAndTheFollowerRunTheirConnectionsOnTheBrokersGroup() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try ReplicationLeader(
            configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger, eventLoopGroup: group
        )
        let leading = Task { try await leader.run() }
        let port = try await leader.listeningPort()
        let follower = try ReplicationFollower(
            configuration: cluster.followerConfiguration("f1", port: port), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger,
            eventLoopGroup: group
        )
        let following = Task { try await follower.run() }
        let before = try Self.cpuNanoseconds(of: group)
        for index in 0..<20_000 {
            try await leader.append(to: "queues/q\(index % 8)/segment.1", bytes: Array(repeating: UInt8(index % 251), count: 100))
            if index % 64 == 63 { await Task.yield() }
        }
        leader.flush()
        let last = leader.lastLSN
        let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) { follower.status().lastDurableLSN == last }
        #expect(converged, "\(follower.status())")
        let used = try Self.cpuNanoseconds(of: group) - before
        // Every frame of 2 MB went out and every ack came in on that thread; had the module
        // ignored the group, its thread would have slept in epoll throughout.
        #expect(used > 5_000_000, "the group's thread ran \(used) ns")
        following.cancel()
        leading.cancel()
        _ = await following.result
        _ = await leading.result
        try await group.shutdownGracefully()
        #expect(try ReplicationTestCluster.files(under: cluster.root + "/f1") == ReplicationTestCluster.files(under: cluster.root + "/leader"))
    }
}
