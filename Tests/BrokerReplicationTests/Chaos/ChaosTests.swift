import HeavyTestGate
import BrokerReplication
import BrokerReplicationTesting
import Foundation
import NIOCore
import Synchronization
import Testing

/// The network failures replication must survive, replayed through ``FaultInjectingProxy`` with real sockets and files:
/// each test asserts the outcome and that no acknowledged record is lost.
@Suite("Chaos", .serialized, .heavy)
struct ChaosTests {
    /// Producers that write append-only records `"<producer>:<sequence>\n"` to their own files,
    /// so a lost or repeated record shows in the files themselves, not only in a byte diff.
    static func produce(_ leader: ReplicationLeader, producers: Int, records: Int, pause: Duration? = nil) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for sequence in 0..<records {
                        let padding = String(repeating: "x", count: sequence % 97)
                        try await leader.append(to: "p\(producer)/segment-\(sequence / 5_000)", bytes: ByteBuffer(string: "\(producer):\(sequence):\(padding)\n"))
                        if let pause, sequence % 500 == 499 { try await Task.sleep(for: pause) }
                        // append does not suspend when nothing waits: share the test's threads.
                        if sequence % 64 == 63 { await Task.yield() }
                    }
                }
            }
            try await group.waitForAll()
        }
        leader.flush()
    }

    /// Every producer's records appear once each, in order, in the follower's files.
    static func expectEveryRecordOnce(_ cluster: ReplicationTestCluster, _ name: String, producers: Int, records: Int) throws {
        let files = try ReplicationTestCluster.files(under: cluster.dataDirectory(name))
        for producer in 0..<producers {
            let lines = files.filter { $0.key.hasPrefix("p\(producer)/") }.sorted { $0.key.localizedStandardCompare($1.key) == .orderedAscending }
                .flatMap { String(decoding: $0.value, as: UTF8.self).split(separator: "\n") }
            let sequences = lines.map { Int($0.split(separator: ":")[1])! }
            #expect(sequences == Array(0..<records), "\(name): producer \(producer) has \(sequences.count) records, expected \(records) in order")
        }
    }

    /// One of two followers is black-holed (no FIN, no RST) under load. Producers
    /// finish, the other follower keeps acking, the black-holed one is evicted within
    /// ackTimeout plus one second, and once healed it resyncs and converges.
    @Test func aBlackHoledFollowerIsEvictedWithoutStallingTheLeader() async throws {
        let ackTimeout = Duration.seconds(2)
        try await ReplicationTestCluster.run(followers: ["healthy", "holed"], configureLeader: { $0.ackTimeout = ackTimeout }) { cluster in
            let leader = cluster.leader
            try await cluster.waitUntil("both followers stream") { leader.status().followers.filter { $0.state == .live }.count == 2 }
            let producing = Task { try await Self.produce(leader, producers: 4, records: 20_000, pause: .milliseconds(5)) }
            try await cluster.waitUntil("load is flowing") { leader.lastLSN > 2_000 }
            let holedAt = Date()
            cluster.proxy("holed").set(.init(blackHole: true))
            try await cluster.waitUntil("the black-holed follower is evicted", timeout: .seconds(60)) {
                leader.status().recentEvictions.contains { $0.nodeID == "holed" }
            }
            // Timed by the leader's own record of the eviction, not by when this task noticed.
            let eviction = try #require(leader.status().recentEvictions.first { $0.nodeID == "holed" })
            #expect(!leader.status().recentEvictions.contains { $0.nodeID == "healthy" }, "\(leader.status().recentEvictions)")
            let toEvict = Duration.milliseconds(Int64(eviction.at.timeIntervalSince(holedAt) * 1000))
            #expect(toEvict <= ackTimeout + .seconds(1), "evicted after \(toEvict): \(eviction)")
            let reasons = leader.status().evictions
            #expect([EvictionReason.ackTimeout, .queueFull].contains(eviction.reason), "\(eviction)")
            // The healthy follower keeps up while the other is black-holed.
            try await producing.value
            let last = leader.lastLSN
            try await cluster.waitUntil("the healthy follower holds everything") { (cluster.follower("healthy")?.status().lastDurableLSN ?? 0) >= last }
            #expect((cluster.follower("holed")?.status().lastDurableLSN ?? 0) < last)
            cluster.proxy("holed").set(.none)
            try await cluster.waitForConvergence()
            try Self.expectEveryRecordOnce(cluster, "holed", producers: 4, records: 20_000)
            #expect(leader.status().evictions.keys.allSatisfy { $0 != .decodeError })
            print("chaos black hole: evicted after \(toEvict) (ackTimeout \(ackTimeout)), reasons \(reasons)")
        }
    }

    /// The follower's connection is reset, or half-closed, right after a frame
    /// while the leader is still writing. Each loss is detected (the follower resumes from its
    /// durable LSN), and no record is lost or repeated.
    @Test func connectionsCutMidStreamLoseAndRepeatNothing() async throws {
        try await ReplicationTestCluster.run(followers: ["cut"]) { cluster in
            let leader = cluster.leader
            let finished = Atomic<Bool>(false)
            // At least 3 s of load (60 pauses of 50 ms per producer), cut every ~150 ms.
            let producing = Task {
                defer { finished.store(true, ordering: .relaxed) }
                try await Self.produce(leader, producers: 2, records: 30_000, pause: .milliseconds(50))
            }
            let proxy = cluster.proxy("cut")
            var round = 0
            while round < 12, !finished.load(ordering: .relaxed) {
                try await cluster.waitUntil("the follower streams again") {
                    finished.load(ordering: .relaxed) || leader.status().followers.contains { $0.state == .live }
                }
                try await Task.sleep(for: .milliseconds(150))
                let connectionsBefore = proxy.statistics.accepted
                // Alternate: an RST a few bytes into the next frame, and a FIN to the follower.
                if round % 2 == 0 {
                    await proxy.reset(afterForwarding: 7 + round * 13, in: .serverToClient)
                } else {
                    await proxy.halfClose(.serverToClient)
                }
                round += 1
                // The cut has landed once the follower has reconnected (an armed reset needs one
                // more frame, which does not come if the load has just ended).
                try await cluster.waitUntil("the follower reconnects after the cut") {
                    finished.load(ordering: .relaxed) || proxy.statistics.accepted > connectionsBefore
                }
            }
            let cuts = proxy.statistics.accepted - 1
            try await producing.value
            try await cluster.waitForConvergence()
            try Self.expectEveryRecordOnce(cluster, "cut", producers: 2, records: 30_000)
            let status = leader.status()
            #expect(cuts >= 3, "only \(cuts) cuts landed while the load ran")
            // A cut that lands during a handshake ends before any resync, so not every cut counts one.
            #expect(status.partialResyncs >= 1, "the follower resumed from its durable LSN after a cut")
            print("chaos cuts: \(cuts) cuts, \(status.partialResyncs) partial and \(status.fullSyncs) full resyncs")
        }
    }

    /// A corrupted byte on the wire, in either direction: frame authentication catches it (or
    /// the header checks, when it lands in a length or type byte), the connection closes with
    /// a clear error, and the follower resyncs and converges.
    @Test(arguments: FaultInjectingProxy.Direction.allCases)
    func aCorruptedByteIsCaught(direction: FaultInjectingProxy.Direction) async throws {
        try await ReplicationTestCluster.run(followers: ["victim"]) { cluster in
            let leader = cluster.leader
            let producing = Task { try await Self.produce(leader, producers: 2, records: 10_000, pause: .milliseconds(5)) }
            try await cluster.waitUntil("the follower streams") { leader.status().followers.contains { $0.state == .live } && leader.lastLSN > 500 }
            // Far enough ahead to land inside a frame body rather than in a length field.
            #expect(await cluster.proxy("victim").corruptByte(at: 100, in: direction) == 1)
            try await cluster.waitUntil("the connection is replaced") { cluster.proxy("victim").statistics.accepted >= 2 }
            try await producing.value
            try await cluster.waitForConvergence()
            try Self.expectEveryRecordOnce(cluster, "victim", producers: 2, records: 10_000)
            switch direction {
            case .serverToClient:
                let error = cluster.follower("victim")?.status().lastError ?? ""
                #expect(error.contains("failed authentication") || error.contains("frame"), "the follower's last error: \(error)")
            case .clientToServer:
                let evictions = leader.status().evictions
                #expect((evictions[.authentication] ?? 0) + (evictions[.decodeError] ?? 0) == 1, "\(evictions)")
            }
        }
    }
}
