import HeavyTestGate
import BrokerReplication
import BrokerReplicationTesting
import Foundation
import MetricsTestKit
import NIOCore
import Testing

/// The follower's own metrics and the leader's in-sync shrink and expand counters move with
/// their events, checked through swift-metrics test backends (one for the leader, one for the
/// followers, as in two processes; not the global bootstrap, so suites run in parallel).
@Suite("Follower metrics", .serialized, .heavy)
struct FollowerMetricsTests {
    static func gauge(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)]) -> Double? {
        (try? metrics.expectGauge(label, dimensions).values)?.last
    }

    static func counter(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        (try? metrics.expectCounter(label, dimensions).totalValue) ?? 0
    }

    @Test func followerMetricsAndInSyncChangesMoveWithTheirEvents() async throws {
        let leaderMetrics = TestMetrics()
        let followerMetrics = TestMetrics()
        try await ReplicationTestCluster.run(followers: ["steady", "holed"], configureLeader: { configuration in
            configuration.metricsFactory = leaderMetrics
            configuration.ackTimeout = .seconds(1)
        }, configureFollower: { configuration in
            configuration.metricsFactory = followerMetrics
            configuration.leaderSilenceTimeout = .seconds(1)
        }) { cluster in
            let leader = cluster.leader
            let holed = [("follower", "holed")]
            try await cluster.waitUntil("both in sync") { leader.status().isr == ["holed", "steady"] }
            #expect(Self.counter(leaderMetrics, "brpl_isr_expands_total") >= 1)
            #expect(Self.gauge(leaderMetrics, "brpl_isr_min_size", []) == 0, "evict mode needs no member")
            var lsn: UInt64 = 0
            for index in 0..<1_000 {
                lsn = try await leader.append(to: "segments/\(index % 4)", bytes: ByteBuffer(string: "{\"event\": \(index)}"))
            }
            try await leader.waitForReplication(upTo: lsn)
            try await cluster.waitUntil("the follower streams, applied and committed, and heard the leader's LSN") {
                Self.gauge(followerMetrics, "brpl_follower_phase", holed + [("phase", "streaming")]) == 1
                    && Self.gauge(followerMetrics, "brpl_follower_phase", holed + [("phase", "connecting")]) == 0
                    && Self.counter(followerMetrics, "brpl_follower_applied_records_total", holed) > 0
                    && Self.gauge(followerMetrics, "brpl_follower_durable_lsn", holed) == Double(lsn)
                    && Self.gauge(followerMetrics, "brpl_follower_leader_lsn", holed) == Double(lsn)
            }
            #expect(Self.counter(followerMetrics, "brpl_follower_applied_bytes_total", holed) > 0)
            #expect(Self.gauge(followerMetrics, "brpl_follower_lag_lsns", holed) == 0)
            #expect(Self.counter(followerMetrics, "brpl_follower_resyncs_total", holed + [("kind", "full")]) >= 1, "a first join is a full sync")
            #expect(try !followerMetrics.expectTimer("brpl_follower_group_commit_duration_seconds", holed).values.isEmpty)

            // Black-holed, the follower goes silent: the leader evicts it (a shrink), and the
            // follower gives up on its silent leader and reconnects.
            cluster.proxy("holed").set(.init(blackHole: true))
            try await cluster.waitUntil("the in-sync set shrinks and the follower reconnects") {
                Self.counter(leaderMetrics, "brpl_isr_shrinks_total") >= 1
                    && Self.counter(followerMetrics, "brpl_follower_reconnects_total", holed) >= 1
                    && Self.gauge(followerMetrics, "brpl_follower_phase", holed + [("phase", "streaming")]) == 0
            }
            let expandsBefore = Self.counter(leaderMetrics, "brpl_isr_expands_total")
            cluster.proxy("holed").set(.none)
            try await cluster.waitUntil("it streams again and rejoins the in-sync set") {
                Self.gauge(followerMetrics, "brpl_follower_phase", holed + [("phase", "streaming")]) == 1
                    && Self.counter(leaderMetrics, "brpl_isr_expands_total") > expandsBefore
            }
            #expect(Self.counter(followerMetrics, "brpl_follower_resyncs_total", holed + [("kind", "partial")])
                + Self.counter(followerMetrics, "brpl_follower_resyncs_total", holed + [("kind", "full")]) >= 2)
        }
    }
}
