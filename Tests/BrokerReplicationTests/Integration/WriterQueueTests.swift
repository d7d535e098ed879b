import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Producers queued behind one another on one file: each one's wait is bounded by its own
/// `producerTimeout`, and a cancelled one leaves the queue at once.
@Suite("Writers queued on one file", .serialized, .heavy)
struct WriterQueueTests {
    /// A listening min-ISR(1) leader with no follower: every write waits its whole timeout.
    static func leaderRefusingEveryWrite(_ cluster: ReplicationTestCluster.Workspace, producerTimeout: Duration) async throws -> (ReplicationLeader, Task<Void, any Error>) {
        var configuration = cluster.leaderConfiguration()
        configuration.policy = .minInSyncReplicas(1)
        configuration.producerTimeout = producerTimeout
        configuration.maxLagTime = producerTimeout / 2
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let serving = Task { try await leader.run() }
        _ = try await leader.listeningPort()
        return (leader, serving)
    }

    /// min-ISR(1) with no follower: every write is refused, so each holder of the file's lock
    /// waits its whole timeout. Queued producers must not add their predecessors' waits.
    @Test func tenProducersOnOneFileAllFailWithinTheirTimeout() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let (leader, serving) = try await Self.leaderRefusingEveryWrite(cluster, producerTimeout: .seconds(1))

        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: (Duration, (any Error)?).self) { group in
            for index in 0..<10 {
                group.addTask {
                    do {
                        try await leader.append(to: "queue/one", bytes: ByteBuffer(string: "message \(index)"))
                        return (ContinuousClock.now - started, nil)
                    } catch {
                        return (ContinuousClock.now - started, error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        serving.cancel()
        _ = await serving.result
        #expect(outcomes.count == 10)
        for (elapsed, error) in outcomes {
            #expect((error as? ReplicationError)?.isNotEnoughReplicas == true, "\(String(describing: error))")
            #expect(elapsed < .seconds(2), "a producer failed after \(elapsed)")
        }
        #expect(leader.lastLSN == 0)
    }

    /// A producer cancelled while it waits for the file's lock ends at once with
    /// CancellationError, and the producers behind it still get their turn.
    @Test func aCancelledProducerLeavesTheQueue() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let (leader, serving) = try await Self.leaderRefusingEveryWrite(cluster, producerTimeout: .seconds(4))

        let started = ContinuousClock.now
        let holder = Task { try await leader.append(to: "queue/one", bytes: ByteBuffer(string: "holder")) }
        try await Task.sleep(for: .milliseconds(200))
        let cancelled = Task { try await leader.append(to: "queue/one", bytes: ByteBuffer(string: "cancelled")) }
        let behind = Task { try await leader.append(to: "queue/one", bytes: ByteBuffer(string: "behind")) }
        try await Task.sleep(for: .milliseconds(200))
        cancelled.cancel()
        let cancelledResult = await cancelled.result
        let cancelledAfter = ContinuousClock.now - started
        #expect(throws: CancellationError.self) { try cancelledResult.get() }
        #expect(cancelledAfter < .seconds(2), "the cancelled producer ended after \(cancelledAfter)")
        // The holder fails at its timeout; the producer behind the cancelled one gets the lock
        // and fails at its own.
        #expect((await holder.result).isNotEnoughReplicas)
        #expect((await behind.result).isNotEnoughReplicas)
        #expect(ContinuousClock.now - started < .seconds(7))

        // The holder of the lock, cancelled while it waits for admission, ends at once too.
        let admitting = Task { try await leader.append(to: "queue/one", bytes: ByteBuffer(string: "admitting")) }
        try await Task.sleep(for: .milliseconds(200))
        let cancelledAt = ContinuousClock.now
        admitting.cancel()
        let admittingResult = await admitting.result
        #expect(throws: CancellationError.self) { try admittingResult.get() }
        #expect(ContinuousClock.now - cancelledAt < .seconds(2))
        #expect(leader.status().throttledProducers == 0)
        serving.cancel()
        _ = await serving.result
    }
}

extension Result {
    fileprivate var isNotEnoughReplicas: Bool {
        guard case .failure(let error) = self else { return false }
        return (error as? ReplicationError)?.isNotEnoughReplicas == true
    }
}
