import HeavyTestGate
import BrokerReplication
import BrokerReplicationTesting
import Foundation
import MetricsTestKit
import NIOCore
import Testing

/// Each metric in Docs/Operations.md moves when its event happens, checked through the
/// swift-metrics test backend handed to the leader (not the global bootstrap, so suites can
/// run in parallel).
@Suite("Metrics", .serialized, .heavy)
struct MetricsTests {
    static func gauge(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) -> [Double] {
        (try? metrics.expectGauge(label, dimensions).values) ?? []
    }

    static func counter(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        (try? metrics.expectCounter(label, dimensions).totalValue) ?? 0
    }

    @Test func followerAndLeaderMetricsMoveWithTheirEvents() async throws {
        let metrics = TestMetrics()
        try await ReplicationTestCluster.run(followers: ["steady", "holed"], configureLeader: { configuration in
            configuration.metricsFactory = metrics
            configuration.metricsInterval = .milliseconds(20)
            configuration.ackTimeout = .seconds(1)
        }) { cluster in
            let leader = cluster.leader
            let steady = [("follower", "steady")]
            let holed = [("follower", "holed")]
            try await cluster.waitUntil("both in sync") { leader.status().isr == ["holed", "steady"] }
            var lsn: UInt64 = 0
            for index in 0..<2_000 {
                lsn = try await leader.append(to: "segments/\(index % 4)", bytes: ByteBuffer(string: "{\"event\": \(index), \"payload\": \"\(String(repeating: "ab", count: 40))\"}"))
            }
            try await leader.waitForReplication(upTo: lsn)
            try await cluster.waitUntil("the gauges caught the in-sync set and the traffic") {
                Self.gauge(metrics, "brpl_isr_size").contains(2) && Self.counter(metrics, "brpl_follower_acked_bytes_total", steady) > 0
            }
            // At least: on a machine running the whole suite, even "steady" may miss its 1 s ack
            // deadline once and reconnect.
            #expect(Self.counter(metrics, "brpl_follower_connections_total", steady) >= 1)
            #expect(Self.counter(metrics, "brpl_follower_resyncs_total", steady + [("kind", "full")]) >= 1, "a first join is a full sync")
            #expect(Self.counter(metrics, "brpl_follower_sent_bytes_total", steady) > 0)
            try await cluster.waitUntil("every sent byte is acked") {
                let status = leader.status().followers.first { $0.nodeID == "steady" }
                return status.map { $0.sentBytes == $0.ackedBytes && $0.sentBytes > 0 } ?? false
            }
            #expect(try metrics.expectTimer("brpl_confirm_latency_seconds").values.count == 1)
            #expect((Self.gauge(metrics, "brpl_compression_ratio").last ?? 0) > 1)
            #expect((Self.gauge(metrics, "brpl_backlog_bytes").last ?? 0) > 0)
            #expect((Self.gauge(metrics, "brpl_last_lsn").last ?? 0) >= Double(lsn) || leader.lastLSN > 0)
            #expect(Self.gauge(metrics, "brpl_follower_connected", steady).last == 1)

            // A black-holed follower lags, then is evicted by its ack timeout.
            cluster.proxy("holed").set(.init(blackHole: true))
            for index in 0..<500 {
                lsn = try await leader.append(to: "segments/\(index % 4)", bytes: ByteBuffer(string: "after the hole \(index)"))
            }
            leader.flush()
            try await cluster.waitUntil("lag shows in bytes, LSNs and seconds") {
                (Self.gauge(metrics, "brpl_follower_lag_bytes", holed).last ?? 0) > 0
                    && (Self.gauge(metrics, "brpl_follower_lag_lsns", holed).last ?? 0) > 0
                    && (Self.gauge(metrics, "brpl_follower_lag_seconds", holed).last ?? 0) > 0
            }
            try await cluster.waitUntil("the eviction is counted with its reason") {
                Self.counter(metrics, "brpl_evictions_total", holed + [("reason", "ack-timeout")]) >= 1
            }
            try await cluster.waitUntil("the in-sync set shrinks") { Self.gauge(metrics, "brpl_isr_size").contains(1) }
            // Healed, it reconnects and resumes from the backlog: a partial resync.
            cluster.proxy("holed").set(.none)
            try await cluster.waitUntil("the holed follower resumes") {
                Self.counter(metrics, "brpl_follower_resyncs_total", holed + [("kind", "partial")]) >= 1
            }
            #expect(Self.counter(metrics, "brpl_follower_connections_total", holed) >= 2)
            try await cluster.waitForConvergence()
            try await cluster.waitUntil("its lag drains") { Self.gauge(metrics, "brpl_follower_lag_bytes", holed).last == 0 }
            #expect(Self.gauge(metrics, "brpl_follower_queue_bytes", holed).contains { $0 >= 0 })
            #expect(!Self.gauge(metrics, "brpl_follower_queue_frames", steady).isEmpty)
        }
    }

    @Test func throttledProducersAndNotEnoughReplicasAreCounted() async throws {
        let metrics = TestMetrics()
        try await ReplicationTestCluster.run(followers: ["only"], configureLeader: { configuration in
            configuration.metricsFactory = metrics
            configuration.metricsInterval = .milliseconds(20)
            configuration.policy = .minInSyncReplicas(2)
            configuration.producerTimeout = .seconds(2)
        }) { cluster in
            let leader = cluster.leader
            try await cluster.waitUntil("the follower is in sync") { leader.status().isr == ["only"] }
            // Two in-sync followers are needed and one exists: the write waits, then fails.
            let failed = await #expect(throws: ReplicationError.self) {
                try await leader.append(to: "q", bytes: ByteBuffer(string: "held"))
            }
            #expect(failed?.isNotEnoughReplicas == true)
            #expect(Self.gauge(metrics, "brpl_throttled_producers").contains(1))
            try await cluster.waitUntil("the error is counted") { Self.counter(metrics, "brpl_not_enough_replicas_total") == 1 }
        }
    }
}
