import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// `ReplicationLeader.elements()`: a broker sees in-sync set changes and evictions as they
/// happen, each subscriber its own stream, and every stream ends with `run()`.
@Suite("Leader events", .serialized, .heavy)
struct LeaderEventsTests {
    typealias Reader = StreamReader<LeaderEvent>

    @Test func aBrokerSeesTheFollowerJoinThenItsEvictionThenTheEnd() async throws {
        try await ReplicationTestCluster.run(followers: ["f1"], configureLeader: { $0.ackTimeout = .seconds(1) }) { cluster in
            let leader = cluster.leader
            let first = Reader(leader.events())
            let second = Reader(leader.events())
            // The follower starts with the cluster: it may have joined before the subscriptions.
            let inSyncWhenSubscribed = leader.status().isr
            try await leader.append(to: "queues/q1/segment.1", bytes: Array("one record\n".utf8))
            try await cluster.waitUntil("f1 is in sync") { leader.status().isr == ["f1"] }
            // A black hole: acks stop, the leader evicts f1 after ackTimeout.
            cluster.proxy("f1").set(.init(blackHole: true))
            try await leader.append(to: "queues/q1/segment.1", bytes: Array("two records\n".utf8))
            leader.flush()
            try await cluster.waitUntil("the subscriber sees f1 evicted") { !first.evictions.isEmpty }
            let joined = LeaderEvent.inSyncReplicasChanged(members: ["f1"], joined: ["f1"], left: [])
            #expect(first.elements.contains(joined) || inSyncWhenSubscribed == ["f1"], "\(first.elements)")
            let eviction = try #require(first.evictions.first)
            #expect(eviction.nodeID == "f1")
            #expect(eviction.reason == .ackTimeout || eviction.reason == .heartbeatTimeout, "\(eviction)")
            #expect(leader.status().recentEvictions.contains { $0.nodeID == "f1" && $0.reason == eviction.reason && $0.detail == eviction.detail })
            try await cluster.waitUntil("f1 leaves the in-sync set, seen by both") {
                [first, second].allSatisfy { $0.elements.contains(.inSyncReplicasChanged(members: [], joined: [], left: ["f1"])) }
            }
            #expect(second.evictions.map(\.detail) == first.evictions.map(\.detail), "every subscriber gets every event")
            cluster.proxy("f1").set(.init())
            leader.shutdownGracefully()
            try await cluster.waitUntil("both streams end with run()") { first.hasEnded && second.hasEnded }
            var afterTheEnd = leader.events().makeAsyncIterator()
            let next = await afterTheEnd.next()
            #expect(next == nil, "a stream asked for after the end is already finished")
        }
    }
}

extension StreamReader<LeaderEvent> {
    var evictions: [LeaderStatus.Eviction] { elements.compactMap { if case .evicted(let eviction) = $0 { eviction } else { nil } } }
}
