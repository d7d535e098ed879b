import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Confirms and min-ISR", .serialized, .heavy)
struct ConfirmTests {
    /// A min-ISR(n) leader with generous timeouts: only the failure test uses a short deadline.
    func configure(_ n: Int?) -> (inout ReplicationLeaderConfiguration) -> Void {
        { configuration in
            if let n { configuration.policy = .minInSyncReplicas(n) }
            configuration.producerTimeout = .seconds(60)
            configuration.maxLagTime = .seconds(60)
        }
    }

    static func inSync(_ leader: ReplicationLeader, _ members: [String]) async throws -> Bool {
        try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == members }
    }

    /// A healthy follower of a leader that has written nothing yet stays in the in-sync set:
    /// its heartbeat replies (durable LSN 0) show it caught up. It used to leave the set after
    /// `maxLagTime`, because a reply for LSN 0 was not counted as an ack.
    @Test func anIdleFollowerOfAnEmptyLeaderStaysInSync() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { configuration in
            configuration.maxLagTime = .seconds(1)
            configuration.heartbeatInterval = .milliseconds(100)
        }) { leader, port in
            try await withFollower(cluster, "idle", port: port) { _ in
                let joined = try await Self.inSync(leader, ["idle"])
                #expect(joined)
                // Three times maxLagTime with nothing written: heartbeats only.
                try await Task.sleep(for: .seconds(3))
                #expect(leader.status().isr == ["idle"], "\(leader.status().isr) after 3 s idle")
                #expect(leader.lastLSN == 0)
            }
        }
    }

    @Test func minISROneKeepsConfirmingThroughTheHealthyFollowerWhileTheOtherIsFrozen() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: configure(1)) { leader, port in
            // The frozen follower completes the handshake and then never reads nor acks.
            let frozen = try await HandshakeRefusalTests.offThePool {
                let raw = try RawFollower(port: port, receiveBufferBytes: 4096)
                _ = try raw.handshake(cluster: cluster.clusterID, nodeID: "frozen", secret: cluster.secret, position: (1, 0))
                return UncheckedBox(raw)
            }
            try await withFollower(cluster, "healthy", port: port) { healthy in
                let joined1 = try await Self.inSync(leader, ["healthy"])
                #expect(joined1)
                for index in 0..<50 {
                    let lsn = try await leader.append(to: "q/\(index % 3)", bytes: Array("message \(index)".utf8))
                    try await leader.waitForReplication(upTo: lsn)
                    #expect(healthy.status().lastDurableLSN >= lsn)
                }
                #expect(leader.status().notEnoughReplicasErrors == 0)
            }
            // Kept open (and frozen) until here; the leader may have evicted it by its ack timeout.
            #expect(frozen.value.descriptor >= 0)
        }
    }

    /// min-ISR(2) with one follower capped in bandwidth: producers are held to its pace rather
    /// than overflowing its queue, with no error and no eviction, as long as it keeps acking
    /// within producerTimeout. (The pace itself is measured by the benchmark.)
    @Test func minISRTwoHoldsProducersToABandwidthCappedFollower() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { configuration in
            configuration.policy = .minInSyncReplicas(2)
            configuration.producerTimeout = .seconds(60)
            configuration.maxLagTime = .seconds(60)
            configuration.ackTimeout = .seconds(60)
            // A small queue, so that the cap, not the queue, decides the pace.
            configuration.batchBytes = 16 * 1024
            configuration.chunkBytes = 16 * 1024
            configuration.queueBytes = 256 * 1024
            configuration.backlogBytes = 64 * 1024 * 1024
        }) { leader, port in
            let proxy = FaultInjectingProxy(upstreamPort: port)
            let proxyPort = try await proxy.start()
            defer { Task { await proxy.stop() } }
            try await withFollower(cluster, "fast", port: port) { _ in
                try await withFollower(cluster, "capped", port: proxyPort) { capped in
                    let joined = try await Self.inSync(leader, ["capped", "fast"])
                    #expect(joined)
                    proxy.set(.init(bytesPerSecond: 1024 * 1024), for: .serverToClient)
                    let maxThrottled = Mutex(0)
                    let watching = Task {
                        while !Task.isCancelled {
                            let throttled = leader.status().throttledProducers
                            maxThrottled.withLock { $0 = max($0, throttled) }
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                    }
                    // 6 MiB of incompressible records from two producers, confirmed at the end: only
                    // the throttle stands between them and the capped follower's small queue.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for producer in 0..<2 {
                            group.addTask {
                                let pool = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) }
                                var lsn: UInt64 = 0
                                for burst in 0..<12 {
                                    for record in 0..<64 {
                                        let offset = (burst * 64 + record) * 4099 % (pool.count - 4096)
                                        let bytes = Array(pool[offset..<offset + 4096])
                                        lsn = try await leader.append(to: "producer-\(producer)/segment-\(burst % 3)", bytes: bytes)
                                    }
                                }
                                try await leader.waitForReplication(upTo: lsn)
                            }
                        }
                        try await group.waitForAll()
                    }
                    watching.cancel()
                    let status = leader.status()
                    #expect(status.notEnoughReplicasErrors == 0)
                    #expect(status.evictions.isEmpty, "\(status.evictions)")
                    #expect(status.isr == ["capped", "fast"])
                    #expect(maxThrottled.withLock { $0 } > 0, "the producers never waited for the capped follower")
                    #expect(capped.status().lastDurableLSN == leader.lastLSN)
                    #expect(proxy.statistics.accepted == 1, "the capped follower was never disconnected")
                }
            }
        }
    }

    /// min-ISR(2) with one follower gone: writes are held back, fail with notEnoughReplicas
    /// after producerTimeout having written nothing, and work again once it is back.
    @Test func minISRTwoRefusesWritesWithoutTheSecondFollowerAndRecoversWhenItReturns() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { configuration in
            configuration.policy = .minInSyncReplicas(2)
            configuration.producerTimeout = .seconds(1)
            configuration.maxLagTime = .seconds(60)
        }) { leader, port in
            try await withFollower(cluster, "f1", port: port) { _ in
                let joined = try await Self.inSync(leader, ["f1"])
                #expect(joined)
                let before = leader.lastLSN
                let error = await #expect(throws: ReplicationError.self) {
                    try await leader.append(to: "q/held", bytes: Array("only one follower".utf8))
                }
                #expect(error?.isNotEnoughReplicas == true)
                #expect(error?.message.contains("nothing was written") == true, "\(String(describing: error))")
                #expect(leader.lastLSN == before)
                #expect(!FileManager.default.fileExists(atPath: cluster.root + "/leader/q/held"))
                #expect(leader.status().notEnoughReplicasErrors == 1)
                try await withFollower(cluster, "f2", port: port) { f2 in
                    let both = try await Self.inSync(leader, ["f1", "f2"])
                    #expect(both)
                    let lsn = try await leader.append(to: "q/held", bytes: Array("two followers".utf8))
                    try await leader.waitForReplication(upTo: lsn)
                    #expect(f2.status().lastDurableLSN >= lsn)
                }
            }
        }
    }

    /// A follower that joined the in-sync set and then stopped acking holds a confirm up until
    /// the confirm's deadline, which then fails with notEnoughReplicas.
    @Test func aConfirmFailsWhenAnInSyncFollowerStopsAcking() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { configuration in
            configuration.ackTimeout = .seconds(60)
            configuration.heartbeatTimeout = .seconds(120)
            configuration.maxLagTime = .seconds(60)
        }) { leader, port in
            let first = try await leader.append(to: "q", bytes: Array("before".utf8))
            leader.flush()
            // The raw follower resumes before `first`, reads it, acks it once, and freezes.
            let raw = try await HandshakeRefusalTests.offThePool { () throws -> UncheckedBox<RawFollower> in
                let raw = try RawFollower(port: port)
                _ = try raw.handshake(cluster: cluster.clusterID, nodeID: "acks-once", secret: cluster.secret, position: (1, 0))
                while let message = try raw.receive() {
                    if case .data(let data) = message, data.lastLSN >= first {
                        try raw.send(.ack(durableLSN: data.lastLSN))
                        break
                    }
                }
                return UncheckedBox(raw)
            }
            let joined = try await Self.inSync(leader, ["acks-once"])
            #expect(joined)
            let lsn = try await leader.append(to: "q", bytes: Array("after".utf8))
            let error = await #expect(throws: ReplicationError.self) {
                try await leader.waitForReplication(upTo: lsn, timeout: .milliseconds(300))
            }
            #expect(error?.isNotEnoughReplicas == true)
            #expect(error?.message.contains("held by 0 of 1 in-sync followers") == true, "\(String(describing: error))")
            #expect(raw.value.descriptor >= 0)
        }
    }

    @Test func aConfirmNeverResolvesBeforeTheNthDurableAck() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: configure(2)) { leader, port in
            try await withFollower(cluster, "f1", port: port) { f1 in
                try await withFollower(cluster, "f2", port: port) { f2 in
                    let joined4 = try await Self.inSync(leader, ["f1", "f2"])
                    #expect(joined4)
                    for index in 0..<100 {
                        let lsn = try await leader.append(to: "q/\(index % 4)", bytes: [UInt8](repeating: UInt8(index), count: 100 + index))
                        try await leader.waitForReplication(upTo: lsn)
                        // Checked against the followers' own durable positions, not the leader's view.
                        let holding = [f1, f2].filter { $0.status().lastDurableLSN >= lsn }.count
                        #expect(holding == 2, "confirm for \(lsn) resolved with \(holding) durable copies")
                    }
                }
            }
        }
    }

    @Test func aShrinkIsPersistedBeforeTheConfirmThatReliesOnIt() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: configure(nil)) { leader, port in
            try await withFollower(cluster, "stays", port: port) { _ in
                try await withFollower(cluster, "leaves", port: port) { _ in
                    let joined5 = try await Self.inSync(leader, ["leaves", "stays"])
                    #expect(joined5)
                }
                // "leaves" is gone. A confirm in evict mode needs every in-sync follower, so it can
                // only resolve once the coordinator no longer lists "leaves".
                let lsn = try await leader.append(to: "q", bytes: Array("after the shrink".utf8))
                try await leader.waitForReplication(upTo: lsn)
                let stored = try await LocalCoordinator(path: cluster.root + "/leader/.brpl/coordinator.json").load()
                #expect(stored.inSyncReplicas == ["stays"])
                #expect(stored.epoch == leader.epoch)
                #expect(leader.status().isr == ["stays"])
                #expect(leader.status().policy == .evictSlowFollowers)
            }
        }
    }

    @Test func confirmsDoNotWaitBeforeTheLeaderListens() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        var configuration = cluster.leaderConfiguration()
        configuration.policy = .minInSyncReplicas(2)
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        // Start-up writes: no follower can be there yet, and nothing may deadlock.
        let lsn = try await leader.append(to: "startup", bytes: Array("recovered state".utf8))
        try await leader.waitForReplication(upTo: lsn)
    }

    @Test func anInvalidPolicyNamesTheKey() throws {
        var configuration = ReplicationTestCluster.Workspace.placeholderLeaderConfiguration()
        configuration.policy = .minInSyncReplicas(0)
        let error = #expect(throws: ReplicationError.self) { try configuration.validate() }
        #expect(error?.message == "policy: minInSyncReplicas needs at least 1, got 0")
    }
}

/// Keeps a non-Sendable test object alive across an await.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension ReplicationTestCluster.Workspace {
    static func placeholderLeaderConfiguration() -> ReplicationLeaderConfiguration {
        ReplicationLeaderConfiguration(dataDirectory: "/nonexistent", clusterID: "c", nodeID: "n")
    }
}
