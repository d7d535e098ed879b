import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Not a test of speed: prints confirm latencies for Docs/Performance.md when asked to
/// (`BRPL_MEASURE=1`). Timing claims live in measurements, never in assertions.
@Suite("Confirm latency measurement", .serialized, .heavy, .enabled(if: ProcessInfo.processInfo.environment["BRPL_MEASURE"] != nil))
struct ConfirmLatencyMeasurement {
    @Test(arguments: [ReplicationPolicy.evictSlowFollowers, .minInSyncReplicas(1), .minInSyncReplicas(2)])
    func confirmLatencyWithTwoFollowers(policy: ReplicationPolicy) async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { $0.policy = policy; $0.producerTimeout = .seconds(60) }) { leader, port in
            try await withFollower(cluster, "f1", port: port) { _ in
                try await withFollower(cluster, "f2", port: port) { _ in
                    let joined = try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["f1", "f2"] }
                    #expect(joined)
                    var corpus = 0
                    var latencies: [Double] = []
                    for index in 0..<2000 {
                        corpus &+= 7
                        let lsn = try await leader.append(to: "q/\(index % 8)", bytes: [UInt8](repeating: UInt8(truncatingIfNeeded: corpus), count: 150))
                        let started = ContinuousClock.now
                        try await leader.waitForReplication(upTo: lsn)
                        let elapsed = ContinuousClock.now - started
                        latencies.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
                    }
                    latencies.sort()
                    let p50 = latencies[latencies.count / 2]
                    let p99 = latencies[latencies.count * 99 / 100]
                    print("confirm latency, \(policy), 2 followers, fsync, 2000 sequential 150-byte appends: p50 \(Int(p50)) µs, p99 \(Int(p99)) µs, max \(Int(latencies.last!)) µs")
                }
            }
        }
    }
}
