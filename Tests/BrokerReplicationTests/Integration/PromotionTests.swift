import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Promotion", .serialized, .heavy)
struct PromotionTests {
    /// Runs `follower` until the returned task is cancelled (or the follower is promoted).
    func start(_ follower: ReplicationFollower) -> Task<Void, any Error> {
        Task { try await follower.run() }
    }

    func follower(_ cluster: ReplicationTestCluster.Workspace, _ name: String, port: Int) throws -> ReplicationFollower {
        try ReplicationFollower(configuration: cluster.followerConfiguration(name, port: port), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
    }

    /// A leader on `name`'s data with generous timeouts: on a loaded machine a follower must
    /// not drop out of the in-sync set.
    func patientLeaderConfiguration(_ cluster: ReplicationTestCluster.Workspace, _ name: String = "leader") -> ReplicationLeaderConfiguration {
        var configuration = cluster.leaderConfiguration(name)
        configuration.maxLagTime = .seconds(120)
        configuration.ackTimeout = .seconds(120)
        configuration.heartbeatTimeout = .seconds(120)
        return configuration
    }

    /// The leader stops right after confirming; a follower of the persisted in-sync set is
    /// promoted, holds every confirmed write, and serves the other follower, which converges.
    /// A follower that left the set earlier is refused, before and after the takeover.
    @Test func anInSyncFollowerTakesOverWithEveryConfirmedWrite() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let coordinatorPath = cluster.root + "/leader/.brpl/coordinator.json"
        let coordinator = LocalCoordinator(path: coordinatorPath)
        var lastConfirmed: UInt64 = 0

        let oldLeader = try ReplicationLeader(configuration: patientLeaderConfiguration(cluster), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let serving = Task { try await oldLeader.run() }
        let oldPort = try await oldLeader.listeningPort()
        let f1 = try follower(cluster, "f1", port: oldPort)
        let f2 = try follower(cluster, "f2", port: oldPort)
        let outsider = try follower(cluster, "outsider", port: oldPort)
        let following = [f1, f2, outsider].map { start($0) }
        let joined = try await ReplicationTestCluster.Workspace.eventually { oldLeader.status().isr == ["f1", "f2", "outsider"] }
        #expect(joined)
        for index in 0..<100 {
            lastConfirmed = try await oldLeader.append(to: "segments/\(index % 5)", bytes: ByteBuffer(string: "before \(index)"))
        }
        try await oldLeader.waitForReplication(upTo: lastConfirmed)
        // The outsider stops; confirms go on once the shrink is persisted.
        following[2].cancel()
        _ = await following[2].result
        for index in 0..<200 {
            lastConfirmed = try await oldLeader.replaceOrAppend(index: index)
            if index % 20 == 19 { try await oldLeader.waitForReplication(upTo: lastConfirmed) }
        }
        let shrunk = try await ReplicationTestCluster.Workspace.eventually { oldLeader.status().isr == ["f1", "f2"] }
        #expect(shrunk)
        // The last confirm relies on the stored set [f1, f2]: both must hold it.
        lastConfirmed = try await oldLeader.append(to: "segments/last", bytes: ByteBuffer(string: "confirmed last"))
        try await oldLeader.waitForReplication(upTo: lastConfirmed)
        #expect(try await coordinator.load().inSyncReplicas == ["f1", "f2"])
        let confirmedContents = try ReplicationTestCluster.files(under: cluster.root + "/leader")
        serving.cancel()
        _ = await serving.result

        let refused = await #expect(throws: ReplicationError.self) { try await outsider.promote(coordinator: coordinator) }
        #expect(refused?.isPromotionRefused == true)
        #expect(refused?.message.contains("not in the last persisted in-sync set") == true, "\(String(describing: refused))")

        // f1 is still running (retrying the dead leader): promote stops it.
        let promotion = try await f1.promote(coordinator: coordinator)
        _ = await following[0].result
        #expect(promotion.previousEpoch == oldLeader.epoch)
        #expect(promotion.epoch == oldLeader.epoch + 1)
        #expect(promotion.lastDurableLSN >= lastConfirmed)
        #expect(try ReplicationTestCluster.files(under: cluster.root + "/f1") == confirmedContents, "the promoted follower lacks confirmed writes")
        await #expect(throws: ReplicationError.self) { try await f1.run() }

        // The new leader runs on f1's data with the shared coordinator.
        var configuration = patientLeaderConfiguration(cluster, "f1")
        configuration.coordinator = coordinator
        let newLeader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        #expect(newLeader.epoch == promotion.epoch)
        let newServing = Task { try await newLeader.run() }
        let newPort = try await newLeader.listeningPort()
        following[1].cancel()
        _ = await following[1].result
        // f2 acked everything too, so it holds exactly the promoted position.
        #expect(f2.status().epoch == promotion.previousEpoch && f2.status().lastDurableLSN == promotion.lastDurableLSN)
        let f2Again = try follower(cluster, "f2", port: newPort)
        let f2Following = start(f2Again)
        var lsn: UInt64 = 0
        for index in 0..<50 {
            lsn = try await newLeader.append(to: "segments/new", bytes: ByteBuffer(string: "after \(index)"))
        }
        let rejoined = try await ReplicationTestCluster.Workspace.eventually { newLeader.status().isr == ["f2"] }
        #expect(rejoined)
        try await newLeader.waitForReplication(upTo: lsn)
        #expect(f2Again.status().epoch == promotion.epoch)
        #expect(f2Again.status().fullSyncs == 0, "the epoch history says the new epoch starts where f2 stands")
        #expect(f2Again.status().resumes == 1 && newLeader.status().epochResumes == 1)
        #expect(try ReplicationTestCluster.files(under: cluster.root + "/f2") == ReplicationTestCluster.files(under: cluster.root + "/f1"))
        #expect(try await coordinator.load() == CoordinatorState(epoch: promotion.epoch, inSyncReplicas: ["f2"], leader: "f1"))

        // After the takeover the outsider is refused for being behind the new epoch, even more so.
        let stale = await #expect(throws: ReplicationError.self) { try await outsider.promote(coordinator: coordinator) }
        #expect(stale?.message.contains("another leader has taken over") == true, "\(String(describing: stale))")

        f2Following.cancel()
        newServing.cancel()
        _ = await (f2Following.result, newServing.result)
    }

    /// Promotion cancels the follower while records arrive: what it applied must still be made
    /// durable and be what the promotion reports. One file of 100-byte appends, so the file
    /// holds exactly 100 bytes per LSN reported.
    @Test func aFollowerPromotedDuringABurstReportsEverythingItApplied() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let coordinator = LocalCoordinator(path: cluster.root + "/leader/.brpl/coordinator.json")
        let leader = try ReplicationLeader(configuration: patientLeaderConfiguration(cluster), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let serving = Task { try await leader.run() }
        let f1 = try follower(cluster, "f1", port: try await leader.listeningPort())
        let following = start(f1)
        #expect(try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["f1"] })

        let record = ByteBuffer(repeating: 0x61, count: 100)
        let writing = Task {
            for _ in 0..<50_000 where !Task.isCancelled { try await leader.append(to: "segment", bytes: record) }
        }
        // Promote while records are arriving, between two group commits.
        #expect(try await ReplicationTestCluster.Workspace.eventually { f1.status().lastDurableLSN >= 2_000 })
        let promotion = try await f1.promote(coordinator: coordinator)
        _ = await following.result
        writing.cancel()
        serving.cancel()
        _ = await (writing.result, serving.result)

        let size = try #require(try FileManager.default.attributesOfItem(atPath: cluster.root + "/f1/segment")[.size] as? Int)
        #expect(promotion.lastDurableLSN >= 2_000)
        #expect(size == Int(promotion.lastDurableLSN) * 100, "the follower applied \(size / 100) records but reports \(promotion.lastDurableLSN)")
    }

    @Test func aForcedPromotionSkipsTheCheckAndSaysSo() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let coordinator = LocalCoordinator(path: cluster.root + "/nowhere/coordinator.json")
        let lonely = try follower(cluster, "lonely", port: 1)
        let refused = await #expect(throws: ReplicationError.self) { try await lonely.promote(coordinator: coordinator) }
        #expect(refused?.message.contains("no complete copy") == true)
        let promotion = try await lonely.promote(coordinator: coordinator, force: true)
        #expect(promotion == Promotion(previousEpoch: 0, lastDurableLSN: 0, epoch: 1, forced: true))
    }
}

extension ReplicationLeader {
    /// Mixed traffic for the promotion test: mostly appends, with a replace every 7th.
    fileprivate func replaceOrAppend(index: Int) async throws -> UInt64 {
        if index % 7 == 0 {
            return try await replace("snapshots/\(index % 3)", contents: ByteBuffer(string: "snapshot \(index)"))
        }
        return try await append(to: "segments/\(index % 5)", bytes: ByteBuffer(string: "after \(index)"))
    }
}

@Suite("Promotion races", .serialized, .heavy)
struct PromotionRaceTests {
    /// Two in-sync followers promote at once: the check and the claim are one compare-and-set,
    /// so exactly one gets the epoch, and the other keeps following.
    @Test func twoFollowersPromotingAtOnceHaveOneWinner() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let coordinator = LocalCoordinator(path: cluster.root + "/shared/coordinator.json")
        var configuration = cluster.leaderConfiguration()
        configuration.coordinator = coordinator
        configuration.maxLagTime = .seconds(120)
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let serving = Task { try await leader.run() }
        let port = try await leader.listeningPort()
        let followers = try ["f1", "f2"].map {
            try ReplicationFollower(configuration: cluster.followerConfiguration($0, port: port), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        }
        let following = followers.map { follower in Task { try await follower.run() } }
        #expect(try await ReplicationTestCluster.Workspace.eventually { leader.status().isr == ["f1", "f2"] })
        let lsn = try await leader.append(to: "segment", bytes: ByteBuffer(string: "confirmed"))
        try await leader.waitForReplication(upTo: lsn)
        serving.cancel()
        _ = await serving.result

        async let first = Result { try await followers[0].promote(coordinator: coordinator) }
        async let second = Result { try await followers[1].promote(coordinator: coordinator) }
        let outcomes = await [first, second]
        let winners = outcomes.compactMap { try? $0.get() }
        #expect(winners.count == 1, "\(outcomes)")
        let state = try await coordinator.load()
        #expect(state.epoch == leader.epoch + 1 && state.inSyncReplicas.isEmpty)
        #expect(["f1", "f2"].contains(state.leader ?? ""))
        for task in following { task.cancel() }
        for task in following { _ = await task.result }
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing call.
    fileprivate init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
