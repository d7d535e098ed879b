import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A job that fails beside a connection's main loop ends the connection with its own reason:
/// a failed group commit on the follower, a full sync the leader cannot send.
@Suite("Failures of a connection's background jobs", .serialized, .heavy)
struct FailurePropagationTests {
    /// A flush that fails must reach the leader as a disk error (not an ack timeout), and the
    /// follower must not resume from a position that covers the unflushed writes.
    @Test func aFailedGroupCommitEvictsAsDiskErrorAndTheNextConnectionRunsAFullSync() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"], configureLeader: { configuration in
            // Long enough that only a disk-error eviction can come first.
            configuration.ackTimeout = .seconds(30)
            configuration.heartbeatTimeout = .seconds(30)
        }) { cluster in
            for index in 0..<20 { try await cluster.leader.append(to: "log/a", bytes: ByteBuffer(string: "before \(index)\n")) }
            try await cluster.waitForConvergence()
            let follower = try #require(cluster.follower("f1"))
            #expect(follower.status().fullSyncs == 1)

            follower.directory.injectedFaults.failNextFlushes(1)
            for index in 0..<20 { try await cluster.leader.append(to: "log/a", bytes: ByteBuffer(string: "after \(index)\n")) }
            cluster.leader.flush()
            try await cluster.waitUntil("an eviction of f1", timeout: .seconds(20)) {
                !cluster.leader.status().recentEvictions.filter { $0.nodeID == "f1" }.isEmpty
            }
            let eviction = try #require(cluster.leader.status().recentEvictions.first { $0.nodeID == "f1" })
            #expect(eviction.reason == .diskError, "\(eviction)")
            #expect(eviction.detail.contains("injected failure"), "\(eviction)")

            try await cluster.waitForConvergence(timeout: .seconds(60))
            #expect(follower.status().fullSyncs == 2, "the follower must forget a position that covers unflushed writes")
        }
    }

    /// A full sync that finds every file identical still flushes before it acks the cut: the
    /// files it kept may hold writes that never reached the disk.
    @Test func aFullSyncThatKeepsEveryFileFlushesBeforeItsAck() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"]) { cluster in
            for index in 0..<20 { try await cluster.leader.append(to: "log/\(index % 4)", bytes: ByteBuffer(string: "record \(index)\n")) }
            try await cluster.waitForConvergence()
            await cluster.stopFollower("f1")
            // Without its position the follower syncs again, and keeps every file.
            try FileManager.default.removeItem(atPath: cluster.dataDirectory("f1") + "/" + FollowerStateFile.rawPath)
            try cluster.startFollower("f1")
            let follower = try #require(cluster.follower("f1"))
            follower.directory.injectedFaults.failNextFlushes(1)
            try await cluster.waitUntil("an eviction of f1", timeout: .seconds(20)) {
                !cluster.leader.status().recentEvictions.filter { $0.nodeID == "f1" }.isEmpty
            }
            let eviction = try #require(cluster.leader.status().recentEvictions.first { $0.nodeID == "f1" })
            #expect(eviction.reason == .diskError && eviction.detail.contains("injected failure"), "\(eviction)")
            try await cluster.waitForConvergence(timeout: .seconds(60))
            #expect(follower.status().fullSyncs == 2)
        }
    }

    /// A file that shrinks behind the module's back makes the leader's full-sync read fail:
    /// the follower is evicted with that reason, not left "syncing" forever.
    @Test func aFullSyncTheLeaderCannotSendEvictsTheFollowerWithItsReason() async throws {
        try await ReplicationTestCluster.run(followers: [], configureLeader: { configuration in
            configuration.chunkBytes = 256 * 1024
        }) { cluster in
            // Incompressible, so the wire carries all 16 MiB: at 1 MiB/s (far more than the
            // socket buffers hold) the sync is still running when the file shrinks.
            var random = SystemRandomNumberGenerator()
            for _ in 0..<64 {
                let words = (0..<32 * 1024).map { _ in random.next() as UInt64 }
                try await cluster.leader.append(to: "big/segment", bytes: words.withUnsafeBytes { ByteBuffer(bytes: $0) })
            }
            let proxy = FaultInjectingProxy(upstreamPort: cluster.leaderPort)
            let port = try await proxy.start()
            proxy.set(.init(bytesPerSecond: 1024 * 1024), for: .serverToClient)
            var configuration = ReplicationFollowerConfiguration(
                dataDirectory: cluster.dataDirectory("f1"), leaderHost: "127.0.0.1", leaderPort: port, clusterID: cluster.clusterID, nodeID: "f1"
            )
            configuration.reconnectBase = .seconds(5)
            configuration.reconnectCap = .seconds(5)
            let follower = try ReplicationFollower(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
            let following = Task { try await follower.run() }
            defer { following.cancel() }
            defer { Task { await proxy.stop() } }

            try await cluster.waitUntil("the full sync has sent bytes", timeout: .seconds(30)) {
                (cluster.leader.status().followers.first { $0.nodeID == "f1" }?.fullSync?.bytesDone ?? 0) > 0
            }
            #expect(truncate(cluster.dataDirectory("leader") + "/big/segment", 0) == 0)
            let shrunkAt = ContinuousClock.now
            try await cluster.waitUntil("an eviction of f1", timeout: .seconds(10)) {
                !cluster.leader.status().recentEvictions.filter { $0.nodeID == "f1" }.isEmpty
            }
            #expect(ContinuousClock.now - shrunkAt < .seconds(10))
            let eviction = try #require(cluster.leader.status().recentEvictions.first { $0.nodeID == "f1" })
            #expect(eviction.reason == .fullSyncFailed, "\(eviction)")
            #expect(eviction.detail.contains("big/segment"), "\(eviction)")
            following.cancel()
            _ = await following.result
        }
    }
}
