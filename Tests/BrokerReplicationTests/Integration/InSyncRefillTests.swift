import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The in-sync set refills while confirms keep coming: with it empty, evict-mode confirms
/// resolve at once, and a returning follower must still be able to hold the highest one.
@Suite("In-sync set refills under load", .serialized, .heavy)
struct InSyncRefillTests {
    @Test func aFollowerWhoseConnectionWasResetRejoinsWhileConfirmsContinue() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"], configureLeader: { configuration in
            configuration.maxLagTime = .seconds(2)
        }) { cluster in
            let leader = cluster.leader
            try await cluster.waitUntil("f1 in sync", timeout: .seconds(60)) { leader.status().isr == ["f1"] }
            let shared = LoadState()
            defer { shared.stop.store(true, ordering: .relaxed) }
            let started = ContinuousClock.now
            // 40 producers, each appending and confirming 200 times a second (8,000/s in all),
            // for at most 60 s. Paced: unpaced, a debug-built follower could not keep up even in sync.
            let load = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for producer in 0..<40 {
                        group.addTask {
                            let record = ByteBuffer(repeating: UInt8(65 + producer), count: 64)
                            var due = ContinuousClock.now
                            while !shared.stop.load(ordering: .relaxed), ContinuousClock.now - started < .seconds(60) {
                                // Five confirms per 25 ms slot; a producer that fell behind does not burst.
                                due = max(due + .milliseconds(25), ContinuousClock.now - .milliseconds(25))
                                for _ in 0..<5 {
                                    let lsn = try await leader.append(to: "load/\(producer)", bytes: record)
                                    try await leader.waitForReplication(upTo: lsn)
                                    shared.confirms.add(1, ordering: .relaxed)
                                }
                                try await Task.sleep(until: due)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Task.sleep(for: .seconds(1))
            let inSyncRate = shared.confirms.load(ordering: .relaxed)
            // Reset, and hold its reconnection back until it has left the set (maxLagTime).
            await cluster.proxy("f1").reset(in: .serverToClient)
            cluster.proxy("f1").set(.init(blackHole: true))
            try await cluster.waitUntil("f1 leaves the in-sync set", timeout: .seconds(30)) { leader.status().isr.isEmpty }
            // One second with the set empty: the confirm rate the follower has to join against.
            let emptyFrom = (shared.confirms.load(ordering: .relaxed), ContinuousClock.now)
            try await Task.sleep(for: .seconds(1))
            let emptyRate = Double(shared.confirms.load(ordering: .relaxed) - emptyFrom.0) / seconds(ContinuousClock.now - emptyFrom.1)
            cluster.proxy("f1").set(.init())
            let left = ContinuousClock.now
            try await cluster.waitUntil("f1 back in the in-sync set under load", timeout: .seconds(30)) { leader.status().isr == ["f1"] }
            let rejoined = ContinuousClock.now
            shared.stop.store(true, ordering: .relaxed)
            try await load.value
            #expect(rejoined - started < .seconds(60), "the load stopped before f1 rejoined")
            print("in-sync refill: \(inSyncRate) confirms in the first second with f1 in sync; \(Int(emptyRate)) confirms/s with the set empty; f1 back in sync \(rejoined - left) after its connection was let through")
        }
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

private final class LoadState: Sendable {
    let confirms = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}
