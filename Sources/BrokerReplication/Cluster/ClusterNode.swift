import Logging
import ServiceLifecycle
import Synchronization

/// One node of a replicated cluster with automatic failover: it campaigns in a
/// ``LeaderElection``, runs a ``ReplicationLeader`` while it leads and a
/// ``ReplicationFollower`` of the elected leader otherwise, switching as leadership changes.
///
/// Only a node that holds every confirmed write may lead: a member of the last stored
/// in-sync set, or the leader that stored it (``EpochClaim/Requirement/inSync(dataEpoch:)``),
/// unless ``ClusterNodeConfiguration/uncleanLeaderElection`` allows otherwise. A leader steps
/// down, and its confirms fail with ``ReplicationError/Code/notLeader``, as soon as its lease
/// is lost or about to expire, or its local writes stall beyond
/// ``ClusterNodeConfiguration/writeStallLimit``. A graceful shutdown of a leader lets its
/// followers catch up first, then resigns, so a follower takes over at once.
///
/// ```swift
/// let election = try EtcdElection(endpoint: EtcdEndpoint(url: "etcd://127.0.0.1:2379"), nodeID: "b1")
/// let node = try ClusterNode(configuration: configuration, election: election, secret: secret)
/// try await node.run()             // a Service: put it in a ServiceGroup
/// if let leader = node.leader { try await leader.append(to: path, bytes: bytes) }
/// ```
public final class ClusterNode: Service, Sendable {
    /// The configuration this node was created with; it passed
    /// ``ClusterNodeConfiguration/validate()``.
    public let configuration: ClusterNodeConfiguration
    let election: any LeaderElection
    let secret: SharedSecret
    let logger: Logger
    private let directory: DataDirectory
    private let shared = Mutex(Shared())

    /// What ``status()`` and ``leader`` read, written by the node's loop only.
    private struct Shared {
        var role: ClusterNodeStatus.Role = .candidate
        var leader: ReplicationLeader?
        var follower: ReplicationFollower?
        var leaderRecord: LeaderRecord?
        var knownEpoch: UInt64 = 0
        var notEligible: String?
        var lastEvent: String?
        var shuttingDown = false
    }

    /// What the node's loop runs now, with the task that runs it.
    private enum Active {
        case candidate
        case following(ReplicationFollower, RoleRun, LeaderRecord)
        case leading(ReplicationLeader, RoleRun)
    }

    /// Opens (and creates) the data directory; nothing is contacted until ``run()``.
    ///
    /// - Parameters:
    ///   - configuration: how the node leads, follows and campaigns; it is validated first.
    ///   - election: the election to campaign in; its ``LeaderElection/coordinator`` stores
    ///     the cluster state for every role.
    ///   - secret: the cluster's shared secret.
    ///   - logger: where the node and its roles log; each line gets the `node` metadata key.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   for an invalid configuration, ``ReplicationError/Code/storage`` when the data
    ///   directory cannot be used.
    public init(
        configuration: ClusterNodeConfiguration, election: any LeaderElection, secret: SharedSecret,
        logger: Logger = Logger(label: "BrokerReplication.node")
    ) throws(ReplicationError) {
        try configuration.validate()
        self.configuration = configuration
        self.election = election
        self.secret = secret
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.leader.nodeID)"
        self.logger = logger
        do {
            self.directory = try DataDirectory(path: configuration.leader.dataDirectory)
        } catch {
            throw ReplicationError(error)
        }
    }

    /// The leader while this node leads, nil otherwise. A write through it may still fail
    /// with ``ReplicationError/Code/notLeader`` once leadership is lost.
    public var leader: ReplicationLeader? { shared.withLock { $0.leader } }

    /// Where the node stands now.
    public func status() -> ClusterNodeStatus {
        let snapshot = shared.withLock { $0 }
        var status = ClusterNodeStatus(
            role: snapshot.role, nodeID: configuration.leader.nodeID, epoch: snapshot.knownEpoch,
            leader: snapshot.leaderRecord?.nodeID, leaderClientAddress: snapshot.leaderRecord?.clientAddress,
            notEligible: snapshot.notEligible, lastEvent: snapshot.lastEvent
        )
        if snapshot.role == .leader, let leader = snapshot.leader {
            status.leaderStatus = leader.status()
            status.epoch = leader.epoch
        }
        if snapshot.role == .follower, let follower = snapshot.follower {
            let followerStatus = follower.status()
            status.followerStatus = followerStatus
            status.epoch = max(status.epoch, followerStatus.epoch)
        }
        return status
    }

    /// Campaigns, leads or follows until the task is cancelled or a graceful shutdown ends it.
    ///
    /// - Throws: what the election's ``LeaderElection/run()`` throws when it cannot go on.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.election.run() }
            await withGracefulShutdownHandler {
                await self.loop()
            } onGracefulShutdown: {
                self.shared.withLock { $0.shuttingDown = true }
            }
            group.cancelAll()
        }
    }

    /// Stops the node gracefully: a leader steps down, lets its followers catch up and
    /// resigns; a follower commits and acks what it applied. ``run()`` returns afterwards.
    public func shutdownGracefully() {
        shared.withLock { $0.shuttingDown = true }
    }

    private var isShuttingDown: Bool { shared.withLock { $0.shuttingDown } }

    private func loop() async {
        var active = Active.candidate
        while !Task.isCancelled, !isShuttingDown {
            active = await step(active)
            try? await Task.sleep(for: configuration.pollInterval)
        }
        await stop(active, graceful: !Task.isCancelled)
        publish(role: .candidate, leader: nil, follower: nil, record: nil)
        logger.info("cluster node stopped")
    }

    private func step(_ active: Active) async -> Active {
        switch active {
        case .leading(let leader, let run):
            return await checkLeadership(leader, run)
        case .following, .candidate:
            return await observe(active)
        }
    }

    // MARK: Leading

    /// Steps down when the lease is lost or nearly expired, the disk stalls, or the leader stopped.
    private func checkLeadership(_ leader: ReplicationLeader, _ run: RoleRun) async -> Active {
        let now = ContinuousClock.now
        guard let reason = LeadershipCheck.stepDownReason(
            now: now, deadline: election.leadershipDeadline(),
            oldestWrite: max(leader.core.localWrites.oldestAge(at: now) ?? .zero, leader.core.localWrites.takeLongestFinished()),
            stallLimit: configuration.writeStallLimit, leaderEnded: run.endedReason
        ) else { return .leading(leader, run) }
        leader.stepDown(reason: reason)
        note("stepped down: \(reason)", level: .warning)
        publish(role: .candidate, leader: nil, follower: nil, record: nil)
        await run.cancelAndWait()
        do {
            try await election.resign()
        } catch {
            note("cannot resign; the lease expires by itself: \(error)", level: .warning)
        }
        return .candidate
    }

    // MARK: Following and campaigning

    /// Follows the elected leader, or campaigns when there is none and this node may lead.
    private func observe(_ active: Active) async -> Active {
        let current: LeaderRecord?
        do {
            current = try await election.leader()
        } catch {
            note("cannot read the election: \(error)", level: .warning)
            return active
        }
        if let current, current.nodeID != configuration.leader.nodeID {
            return await follow(current, from: active)
        }
        if current != nil {
            try? await election.resign()  // a record of a campaign this node could not complete
            return active
        }
        publish(role: .candidate, leader: nil, follower: nil, record: nil)
        return await campaign(from: active)
    }

    private func follow(_ record: LeaderRecord, from active: Active) async -> Active {
        if case .following(let follower, let run, let following) = active, following == record, run.endedReason == nil {
            publish(role: .follower, leader: nil, follower: follower, record: record)
            return active
        }
        await stop(active, graceful: false)
        var configuration = self.configuration.follower
        configuration.leaderHost = record.replicationHost
        configuration.leaderPort = record.replicationPort
        do {
            let follower = try ReplicationFollower(configuration: configuration, secret: secret, logger: logger)
            let run = RoleRun { try await follower.run() }
            note("following \(record.nodeID) at \(record.replicationHost):\(record.replicationPort)", level: .info)
            publish(role: .follower, leader: nil, follower: follower, record: record)
            return .following(follower, run, record)
        } catch {
            note("cannot follow \(record.nodeID): \(error)", level: .error)
            return .candidate
        }
    }

    private func campaign(from active: Active) async -> Active {
        let nodeID = configuration.leader.nodeID
        let stored: CoordinatorState
        let data: LeadershipCheck.LocalData
        do {
            stored = try await election.coordinator.load()
            data = try localData()
        } catch {
            note("cannot check whether this node may lead: \(error)", level: .warning)
            return active
        }
        shared.withLock { $0.knownEpoch = max($0.knownEpoch, stored.epoch) }
        if let refusal = LeadershipCheck.refusal(nodeID: nodeID, data: data, stored: stored, unclean: false) {
            if !configuration.uncleanLeaderElection {
                if shared.withLock({ $0.notEligible }) != refusal { logger.notice("not eligible to lead", metadata: ["reason": "\(refusal)"]) }
                shared.withLock { $0.notEligible = refusal }
                return active
            }
            logger.critical("UNCLEAN LEADER ELECTION: this node may lack confirmed writes, which are lost if it leads", metadata: ["reason": "\(refusal)"])
        }
        shared.withLock { $0.notEligible = nil }
        let record = LeaderRecord(
            nodeID: nodeID, replicationHost: configuration.leader.host, replicationPort: configuration.leader.port,
            clientAddress: configuration.clientAddress
        )
        do {
            guard try await election.campaign(record) else { return active }
        } catch {
            note("cannot campaign: \(error)", level: .warning)
            return active
        }
        do {
            let (leader, run) = try await lead(from: active, data: data, stored: stored)
            note("leading epoch \(leader.epoch)", level: .notice)
            publish(role: .leader, leader: leader, follower: nil, record: record)
            return .leading(leader, run)
        } catch {
            note("won the election but cannot lead: \(error)", level: .error)
            // A refused promotion leaves the follower running: only the next poll's may run.
            await stop(active, graceful: false)
            try? await election.resign()
            return .candidate
        }
    }

    /// Claims the next epoch (through the follower's promotion when the files are a
    /// follower's copy) and starts the leader on this data directory.
    private func lead(from active: Active, data: LeadershipCheck.LocalData, stored: CoordinatorState) async throws -> (ReplicationLeader, RoleRun) {
        let unclean = configuration.uncleanLeaderElection
        let epoch: UInt64
        if data.isFollowerCopy {
            let follower: ReplicationFollower
            if case .following(let running, _, _) = active { follower = running } else {
                follower = try ReplicationFollower(configuration: configuration.follower, secret: secret, logger: logger)
            }
            let promotion = try await follower.promote(coordinator: election.coordinator, force: unclean)
            if case .following(_, let run, _) = active { await run.cancelAndWait() }
            epoch = promotion.epoch
        } else {
            await stop(active, graceful: false)
            epoch = max(data.ledEpoch, stored.epoch) + 1
            let requirement: EpochClaim.Requirement = unclean ? .newerEpoch : .inSync(dataEpoch: data.dataEpoch)
            _ = try await election.coordinator.claimEpoch(EpochClaim(epoch: epoch, nodeID: configuration.leader.nodeID, requirement: requirement))
            do {
                try LeaderEpochFile(directory: directory).store(epoch - 1)
            } catch {
                throw ReplicationError(error)
            }
        }
        var leaderConfiguration = configuration.leader
        leaderConfiguration.coordinator = election.coordinator
        let leader = try ReplicationLeader(configuration: leaderConfiguration, secret: secret, logger: logger)
        guard leader.epoch == epoch else {
            throw ReplicationError.coordination("the leader took epoch \(leader.epoch), not the claimed epoch \(epoch): another process wrote this data directory")
        }
        let run = RoleRun { try await leader.run() }
        do {
            _ = try await leader.listeningPort()
        } catch {
            await run.cancelAndWait()
            throw error
        }
        return (leader, run)
    }

    private func localData() throws -> LeadershipCheck.LocalData {
        do {
            let followed = try FollowerStateFile(directory: directory).load().epoch
            let led = try LeaderEpochFile(directory: directory).load()
            return LeadershipCheck.LocalData(followedEpoch: followed, ledEpoch: led)
        } catch {
            throw ReplicationError(error)
        }
    }

    // MARK: Stopping

    private func stop(_ active: Active, graceful: Bool) async {
        switch active {
        case .candidate:
            return
        case .following(let follower, let run, _):
            if graceful { follower.shutdownGracefully(); await run.wait() } else { await run.cancelAndWait() }
        case .leading(let leader, let run):
            // No confirm after this point: the followers' copies then hold every confirmed
            // write, whichever of them the election picks next.
            leader.stepDown(reason: "the node is shutting down")
            if graceful {
                leader.shutdownGracefully()
                await run.wait()
            } else {
                await run.cancelAndWait()
            }
            do {
                try await election.resign()
                logger.notice("resigned the leadership")
            } catch {
                logger.warning("cannot resign; the lease expires by itself", metadata: ["error": "\(error)"])
            }
        }
    }

    private func publish(role: ClusterNodeStatus.Role, leader: ReplicationLeader?, follower: ReplicationFollower?, record: LeaderRecord?) {
        shared.withLock { shared in
            (shared.role, shared.leader, shared.follower, shared.leaderRecord) = (role, leader, follower, record)
            if let leader { shared.knownEpoch = max(shared.knownEpoch, leader.epoch) }
        }
    }

    private func note(_ event: String, level: Logger.Level) {
        let changed = shared.withLock { shared in
            defer { shared.lastEvent = event }
            return shared.lastEvent != event
        }
        if changed { logger.log(level: level, "\(event)") }
    }
}
