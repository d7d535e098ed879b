import BrokerReplicationTesting
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Stepping down")
struct StepDownTests {
    /// A leader that loses its leadership fails the writes its policy holds back, and every
    /// later write and confirm, with notLeader, long before producerTimeout.
    @Test func heldAndLaterWritesFailWithNotLeaderOnceTheLeaderStepsDown() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: {
            $0.policy = .minInSyncReplicas(1)
            $0.producerTimeout = .seconds(60)
        }) { leader, _ in
            // No follower: min-ISR(1) holds the write back.
            let held = Task { try await leader.append(to: "segment", bytes: ByteBuffer(string: "held")) }
            let throttled = try await ReplicationTestCluster.Workspace.eventually { leader.status().throttledProducers == 1 }
            #expect(throttled)
            leader.stepDown(reason: "the election lease was lost")
            let failed = await #expect(throws: ReplicationError.self) { try await held.value }
            #expect(failed?.isNotLeader == true && failed?.message.contains("the election lease was lost") == true, "\(String(describing: failed))")
            let write = await #expect(throws: ReplicationError.self) { try await leader.append(to: "segment", bytes: ByteBuffer(string: "refused")) }
            #expect(write?.isNotLeader == true && write?.message.contains("nothing was written") == true)
            let confirm = await #expect(throws: ReplicationError.self) { try await leader.waitForReplication(upTo: 0) }
            #expect(confirm?.isNotLeader == true)
            #expect(leader.status().steppedDown == "the election lease was lost")
            #expect(leader.lastLSN == 0)
        }
    }
}
