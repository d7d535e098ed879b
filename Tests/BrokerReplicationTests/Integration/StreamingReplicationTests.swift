import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// End to end over real loopback TCP with real files and fsync.
@Suite("Streaming replication", .serialized, .heavy)
struct StreamingReplicationTests {
    /// Mixed appends, replaces and deletes across `files` files from `producers` tasks.
    static func produce(_ leader: ReplicationLeader, producers: Int, recordsEach: Int, files: Int, seed: UInt64) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    var random = SplitMix(seed: seed &+ UInt64(producer))
                    // Each producer owns its share of the files, as a broker's writer owns its segments.
                    let owned = Array(stride(from: producer, to: max(files, producers), by: producers))
                    for index in 0..<recordsEach {
                        let file = "f\(owned[Int(random.next() % UInt64(owned.count))])"
                        let roll = random.next() % 100
                        if roll < 90 {
                            let size = Int(random.next() % 300) + 1
                            try await leader.append(to: file, bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) })
                        } else if roll < 97 {
                            try await leader.replace(file, contents: Array("replaced \(index) by \(producer)".utf8))
                        } else {
                            try await leader.delete(file)
                        }
                        // append does not suspend when nothing waits: share the test's threads.
                        if index % 64 == 63 { await Task.yield() }
                    }
                }
            }
            try await group.waitForAll()
        }
        leader.flush()
    }

    @Test func twoFollowersConvergeByteForByteUnderConcurrentProducers() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try ReplicationLeader(configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await leader.run() }
            let port = try await leader.listeningPort()
            let followers = try ["f1", "f2"].map {
                try ReplicationFollower(configuration: cluster.followerConfiguration($0, port: port), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
            }
            for follower in followers { group.addTask { try await follower.run() } }
            // The second half is written while the followers are already streaming.
            try await Self.produce(leader, producers: 4, recordsEach: 10_000, files: 50, seed: 1)
            try await Self.produce(leader, producers: 4, recordsEach: 10_000, files: 50, seed: 2)
            let last = leader.lastLSN
            #expect(last >= 80_000)
            let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(180)) {
                followers.allSatisfy { $0.status().lastDurableLSN == last }
            }
            #expect(converged, "followers \(followers.map { $0.status() }), leader \(leader.status())")
            let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
            #expect(expected.count > 40, "\(expected.count) of 50 files exist at the end (deletes remove some)")
            #expect(leader.status().followers.allSatisfy { $0.fullSync?.filesDone == $0.fullSync?.files }, "full-sync progress in status")
            for name in ["f1", "f2"] {
                let actual = try ReplicationTestCluster.files(under: cluster.root + "/" + name)
                #expect(actual == expected, "\(name) differs from the leader")
            }
            group.cancelAll()
        }
    }
}

@Suite("Resync and eviction", .serialized, .heavy)
struct ResyncAndEvictionTests {
    func expectIdentical(_ cluster: ReplicationTestCluster.Workspace, _ names: [String]) throws {
        let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
        for name in names {
            let actual = try ReplicationTestCluster.files(under: cluster.root + "/" + name)
            #expect(actual == expected, "\(name) differs from the leader: \(Set(actual.keys).symmetricDifference(expected.keys).sorted().prefix(5))")
        }
    }

    @Test func aFollowerJoiningWhileProducersWriteConverges() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            try await StreamingReplicationTests.produce(leader, producers: 2, recordsEach: 1000, files: 20, seed: 7)
            try await withFollower(cluster, "late", port: port) { follower in
                // Keep writing through the follower's full sync and into its streaming, so the
                // cut, the file transfer and the catch-up all race real producers.
                var roundsAfterStreaming = 0
                for round in 0..<400 where roundsAfterStreaming < 5 {
                    try await StreamingReplicationTests.produce(leader, producers: 4, recordsEach: 100, files: 40, seed: 100 + UInt64(round))
                    if follower.status().phase == .streaming { roundsAfterStreaming += 1 }
                }
                #expect(roundsAfterStreaming == 5, "the follower never reached streaming while producers wrote")
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(converged)
                // Usually one; on a starved machine a slow sync may be evicted and run again.
                #expect(follower.status().fullSyncs >= 1)
                try expectIdentical(cluster, ["late"])
            }
        }
    }

    @Test func aRestartedFollowerResumesFromTheBacklogWithoutAFullSync() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            try await StreamingReplicationTests.produce(leader, producers: 2, recordsEach: 500, files: 10, seed: 3)
            try await withFollower(cluster, "f", port: port) { follower in
                let last = leader.lastLSN
                let reached2 = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(reached2)
            }
            // Stopped: the leader writes on without it.
            try await StreamingReplicationTests.produce(leader, producers: 2, recordsEach: 500, files: 10, seed: 4)
            let fullSyncsBefore = leader.core.counters.fullSyncs
            try await withFollower(cluster, "f", port: port) { follower in
                let last = leader.lastLSN
                let reached3 = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(reached3)
                #expect(follower.status().fullSyncs == 0, "resumed from the backlog, no full sync")
                #expect(follower.status().resumes == 1)
                #expect(leader.core.counters.fullSyncs == fullSyncsBefore)
                try expectIdentical(cluster, ["f"])
            }
        }
    }

    @Test func aFollowerBeyondTheBacklogFullSyncs() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: {
            $0.chunkBytes = 64 * 1024
            $0.queueBytes = 1 << 20
            $0.backlogBytes = 1 << 20
        }) { leader, port in
            try await withFollower(cluster, "f", port: port) { follower in
                try await StreamingReplicationTests.produce(leader, producers: 1, recordsEach: 200, files: 5, seed: 5)
                let last = leader.lastLSN
                let reached4 = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(reached4)
            }
            // Several MiB of incompressible data push the follower's position out of a 1 MiB backlog.
            var random = SplitMix(seed: 9)
            for index in 0..<40 {
                try await leader.append(to: "big/\(index % 4)", bytes: (0..<100_000).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            }
            leader.flush()
            try await withFollower(cluster, "f", port: port) { follower in
                let last = leader.lastLSN
                let reached5 = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(reached5)
                // At least one; on a starved machine a sync may be evicted and run again.
                #expect(follower.status().fullSyncs >= 1)
                try expectIdentical(cluster, ["f"])
            }
        }
    }

    /// A follower disconnected over and over while replaces and deletes hit the same few
    /// files: each reconnect resumes after everything it applied (made durable first), so it
    /// never replays an append onto a file a later replace already shortened.
    @Test func repeatedDisconnectsResumeWithoutReplayingOntoNewerFiles() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            try await withFollower(cluster, "f", port: port) { follower in
                let streaming = try await ReplicationTestCluster.Workspace.eventually { follower.status().phase == .streaming }
                #expect(streaming)
                // Ten rounds of writes, each ended by dropping the follower's connection while
                // it still has records in flight.
                for round in 0..<10 {
                    try await StreamingReplicationTests.produce(leader, producers: 2, recordsEach: 400, files: 4, seed: 31 + UInt64(round))
                    for session in leader.core.sessions {
                        leader.core.evict(session, reason: .ackTimeout, detail: "forced by the test")
                    }
                }
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(converged, "\(follower.status())")
                #expect(follower.status().connects >= 3, "the test disconnected it repeatedly")
                #expect(follower.status().fullSyncs == 1, "only the first join; every reconnect resumed: \(follower.status())")
                #expect(leader.core.counters.evictions[.decodeError] == nil, "\(leader.core.counters.evictions)")
                try expectIdentical(cluster, ["f"])
            }
        }
    }

    /// After a crash a follower's files can hold changes beyond its stored LSN. Replaying an
    /// append onto a file that a later replace shortened does not fit: the follower drops its
    /// position and full-syncs instead of looping, and converges.
    @Test func aReplayThatDoesNotFitTheFilesEndsInAFullSync() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster) { leader, port in
            let beforeCrash = try await leader.append(to: "f", bytes: [UInt8](repeating: 1, count: 100))
            leader.flush()
            try await leader.append(to: "f", bytes: [UInt8](repeating: 2, count: 50))
            try await leader.replace("f", contents: Array("short".utf8))
            leader.flush()
            try await withFollower(cluster, "f1", port: port) { follower in
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last }
                #expect(converged)
            }
            // The crash: the stored position goes back to before the 50-byte append, while the
            // file already holds the replace that came after it.
            let directory = try DataDirectory(path: cluster.root + "/f1")
            try FollowerStateFile(directory: directory).store(FollowerPosition(epoch: leader.epoch, lastDurableLSN: beforeCrash), durable: true)
            try await withFollower(cluster, "f1", port: port) { follower in
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN == last && follower.status().fullSyncs == 1 }
                #expect(converged, "\(follower.status())")
                #expect(follower.status().resumes == 1, "it first tried to resume")
                try expectIdentical(cluster, ["f1"])
            }
        }
    }

    /// A follower that stops reading must not stall producers or the other follower.
    @Test func aFollowerThatStopsReadingIsEvictedWhileProducersFinish() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { $0.queueFrames = 256 }) { leader, port in
            try await withFollower(cluster, "healthy", port: port) { healthy in
                let stalled = try RawFollower(port: port, receiveBufferBytes: 4096)
                // It claims to be up to date at this epoch, so it streams live from LSN 1.
                let welcome = try stalled.handshake(cluster: cluster.clusterID, nodeID: "stalled", secret: cluster.secret, position: (leader.epoch, 0))
                guard case .welcome(let accepted) = welcome, accepted.resync == .resume else {
                    Issue.record("no welcome")
                    return
                }
                let reached6 = try await ReplicationTestCluster.Workspace.eventually { leader.core.sessions.contains { $0.nodeID == "stalled" } }
                #expect(reached6)
                // A fixed workload; the stalled follower reads nothing, ever.
                try await StreamingReplicationTests.produce(leader, producers: 4, recordsEach: 3000, files: 40, seed: 11)
                for index in 0..<30 {
                    try await leader.append(to: "bulk/\(index)", bytes: [UInt8](repeating: UInt8(index), count: 200_000))
                }
                leader.flush()
                let reached7 = try await ReplicationTestCluster.Workspace.eventually { (leader.core.counters.evictions[.queueFull] ?? 0) + (leader.core.counters.evictions[.ackTimeout] ?? 0) >= 1 }
                #expect(reached7)
                let reached8 = try await ReplicationTestCluster.Workspace.eventually { stalled.isClosedByPeer() }
                #expect(reached8)
                let last = leader.lastLSN
                let reached9 = try await ReplicationTestCluster.Workspace.eventually { healthy.status().lastDurableLSN == last }
                #expect(reached9)
                try expectIdentical(cluster, ["healthy"])
            }
        }
    }
}
