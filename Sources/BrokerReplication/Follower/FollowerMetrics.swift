import CoreMetrics
import Synchronization

/// The follower's own metrics through swift-metrics; every name is listed in Docs/Operations.md.
///
/// They carry the dimension `follower` (this follower's node id) and share their names with
/// the leader's per-follower metrics where they measure the same thing (`brpl_follower_lag_lsns`,
/// `brpl_follower_resyncs_total`): a dashboard reads either side. They move at events (a status
/// change, a heartbeat, a batch, a group commit), never per record.
final class FollowerMetrics: Sendable {
    private let phases: [ReplicationFollower.FollowerStatus.Phase: Gauge]
    private let lagLSNs: Gauge
    private let leaderLSN: Gauge
    private let durableLSN: Gauge
    private let appliedBytes: Counter
    private let appliedRecords: Counter
    private let groupCommitDuration: CoreMetrics.Timer
    private let fullResyncs: Counter
    private let partialResyncs: Counter
    private let reconnects: Counter
    /// The leader's newest LSN as last heard, and this follower's durable LSN: the lag is
    /// their difference, set whenever either moves.
    private let positions = Mutex<(leader: UInt64, durable: UInt64)>((0, 0))

    /// The metrics of `configuration`'s follower, through its `metricsFactory` or else the
    /// global `MetricsSystem.factory` the broker bootstrapped.
    convenience init(_ configuration: ReplicationFollowerConfiguration) {
        self.init(nodeID: configuration.nodeID, factory: configuration.metricsFactory ?? MetricsSystem.factory)
    }

    init(nodeID: String, factory: any MetricsFactory) {
        let follower = [("follower", nodeID)]
        var phases: [ReplicationFollower.FollowerStatus.Phase: Gauge] = [:]
        for phase in [ReplicationFollower.FollowerStatus.Phase.connecting, .syncing, .streaming] {
            phases[phase] = Gauge(label: "brpl_follower_phase", dimensions: follower + [("phase", phase.rawValue)], factory: factory)
        }
        self.phases = phases
        lagLSNs = Gauge(label: "brpl_follower_lag_lsns", dimensions: follower, factory: factory)
        leaderLSN = Gauge(label: "brpl_follower_leader_lsn", dimensions: follower, factory: factory)
        durableLSN = Gauge(label: "brpl_follower_durable_lsn", dimensions: follower, factory: factory)
        appliedBytes = Counter(label: "brpl_follower_applied_bytes_total", dimensions: follower, factory: factory)
        appliedRecords = Counter(label: "brpl_follower_applied_records_total", dimensions: follower, factory: factory)
        groupCommitDuration = CoreMetrics.Timer(label: "brpl_follower_group_commit_duration_seconds", dimensions: follower, factory: factory)
        fullResyncs = Counter(label: "brpl_follower_resyncs_total", dimensions: follower + [("kind", "full")], factory: factory)
        partialResyncs = Counter(label: "brpl_follower_resyncs_total", dimensions: follower + [("kind", "partial")], factory: factory)
        reconnects = Counter(label: "brpl_follower_reconnects_total", dimensions: follower, factory: factory)
    }

    /// Follows a change of the follower's status: its phase, resyncs, reconnects, durable LSN.
    func statusChanged(from before: ReplicationFollower.FollowerStatus, to after: ReplicationFollower.FollowerStatus) {
        if before.phase != after.phase || before.connects == 0 {
            for (phase, gauge) in phases { gauge.record(phase == after.phase ? 1 : 0) }
        }
        if after.fullSyncs > before.fullSyncs { fullResyncs.increment(by: after.fullSyncs - before.fullSyncs) }
        if after.resumes > before.resumes { partialResyncs.increment(by: after.resumes - before.resumes) }
        // The first connection attempt is a connect; every later one is a reconnect.
        let reconnected = after.connects - max(before.connects, 1)
        if reconnected > 0 { reconnects.increment(by: reconnected) }
        if after.lastDurableLSN != before.lastDurableLSN { moved { $0.durable = after.lastDurableLSN } }
    }

    /// A heartbeat told the leader's newest LSN. The leader sends one only when it has sent
    /// nothing for its heartbeat interval, so on a busy link the lag is as of the last one.
    func heard(leaderLSN lsn: UInt64) {
        moved { $0.leader = lsn }
    }

    /// One data frame applied (not yet durable).
    func applied(records: Int, bytes: Int) {
        appliedRecords.increment(by: records)
        appliedBytes.increment(by: bytes)
    }

    /// One group commit made durable after `duration` (the flush and the state file).
    func groupCommitted(after duration: Duration) {
        groupCommitDuration.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    private func moved(_ change: (inout (leader: UInt64, durable: UInt64)) -> Void) {
        let now = positions.withLock { positions in
            change(&positions)
            // A full sync forgets the durable LSN: the leader's LSN is then the whole lag.
            positions.leader = max(positions.leader, positions.durable)
            return positions
        }
        leaderLSN.record(Int64(clamping: now.leader))
        durableLSN.record(Int64(clamping: now.durable))
        lagLSNs.record(Int64(clamping: now.leader - now.durable))
    }
}
