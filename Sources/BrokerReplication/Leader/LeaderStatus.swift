import Foundation

/// A snapshot of a leader, for a broker's management API and `replication-node`'s status file.
///
/// Its JSON encoding is part of the module's interface: the typed fields encode as the strings
/// they name (`"state": "catching-up"`, `"policy": "min-in-sync-replicas(2)"`,
/// `"evictions": {"queue-full": 1}`, `"reason": "ack-timeout"`).
public struct LeaderStatus: Sendable, Codable, Equatable {
    /// Where a connected follower stands in its stream.
    public enum FollowerState: String, Hashable, Sendable, Codable, CustomStringConvertible {
        /// It receives a full sync.
        case syncing
        /// It streams from the backlog, behind the records being sealed now.
        case catchingUp = "catching-up"
        /// It receives the records as they are sealed.
        case live

        /// The raw value, e.g. `catching-up`, as in the JSON encoding.
        public var description: String { rawValue }
    }

    /// One connected follower as the leader sees it.
    public struct Follower: Sendable, Codable, Equatable {
        /// The node id the follower gave in its handshake.
        public var nodeID: String
        /// The follower's remote IP address and port, e.g. `10.0.0.7:51234`.
        public var address: String
        /// `syncing`, `catching-up` or `live`.
        public var state: FollowerState
        /// The follower's highest acked (durable) LSN.
        public var ackedLSN: UInt64
        /// The last LSN handed to its socket.
        public var sentLSN: UInt64
        /// How far its acks trail the leader, in LSNs.
        public var lagLSNs: UInt64
        /// Bytes of data frames it has still to ack (queued, or written and unacked).
        public var lagBytes: Int
        /// Seconds since the oldest frame it has not acked was sealed (0 when it has them all).
        public var lagSeconds: Double
        /// Bytes of sealed frames in its outbound queue, not yet handed to its socket (at most
        /// `queueBytes`).
        public var queuedBytes: Int
        /// Frames in its outbound queue, not yet handed to its socket (at most `queueFrames`).
        public var queuedFrames: Int
        /// Bytes of data frames written to it on this connection.
        public var sentBytes: Int
        /// Bytes of data frames it has acked on this connection.
        public var ackedBytes: Int
        /// The follower's latest full sync from this leader (nil when it resumed from the backlog).
        public var fullSync: SyncProgress?
    }

    /// The leader's node id (``ReplicationLeaderConfiguration/nodeID``).
    public var nodeID: String
    /// The leader's epoch (``ReplicationLeader/epoch``).
    public var epoch: UInt64
    /// The leader's policy; in JSON `"evict-slow-followers"` or `"min-in-sync-replicas(n)"`.
    public var policy: ReplicationPolicy
    /// The persisted in-sync set (node ids).
    public var isr: [String]
    /// The highest LSN for which a confirm holds now.
    public var confirmedLSN: UInt64
    /// Confirms and writes that failed with `notEnoughReplicas`.
    public var notEnoughReplicasErrors: Int
    /// Producers held back by the min-ISR policy right now.
    public var throttledProducers: Int
    /// The last LSN given to a change.
    public var lastLSN: UInt64
    /// The connected followers, sorted by node id.
    public var followers: [Follower]
    /// Evictions since the leader started, by reason; in JSON an object keyed by the
    /// reasons' raw values (`{"ack-timeout": 2}`).
    public var evictions: [EvictionReason: Int]
    /// The last evictions (at most ``Eviction/kept``), oldest first.
    public var recentEvictions: [Eviction]
    /// Follower connections the leader answered with a full sync since it started.
    public var fullSyncs: Int
    /// Follower connections the leader resumed from its backlog since it started.
    public var partialResyncs: Int
    /// Of ``partialResyncs``, followers of an earlier epoch whose data lined up with the start
    /// of this one (its epoch history), resumed without a full sync.
    public var epochResumes: Int
    /// Bytes of file contents full syncs sent (before compression) since the leader started.
    public var fullSyncBytes: Int
    /// Bytes of every full-sync frame sent (begin, manifest, chunks, end) since the leader
    /// started: what full syncs cost the network.
    public var fullSyncWireBytes: Int
    /// Batches sealed into data frames since the leader started.
    public var sealedBatches: Int
    /// Uncompressed record bytes sealed into batches.
    public var payloadBytes: Int
    /// Bytes of sealed frames (what each follower receives).
    public var wireBytes: Int
    /// Memory the backlog's frames hold now, in bytes (their buffers' capacity), bounded by the
    /// configuration's `backlogBytes`.
    public var backlogBytes: Int
    /// The first LSN the backlog still holds, nil while it is empty; a follower that needs
    /// older records gets a full sync.
    public var backlogFirstLSN: UInt64?
    /// Why this leader stepped down (``ReplicationLeader/stepDown(reason:)``); nil while it
    /// leads. Once set, every confirm and write fails with ``ReplicationError/Code/notLeader``.
    public var steppedDown: String?
    /// Seconds the oldest local write in progress (a `pwrite`, or a replace's fsync) has run
    /// so far; nil when none runs. It grows while the disk stalls.
    public var oldestLocalWriteSeconds: Double?

    /// One eviction: who, why, and when (wall-clock time, for operators and logs).
    public struct Eviction: Sendable, Codable, Equatable {
        /// How many ``LeaderStatus/recentEvictions`` keeps.
        public static let kept = 32
        /// The node id of the follower evicted.
        public var nodeID: String
        /// Why; in JSON its raw value, e.g. `"queue-full"`.
        public var reason: EvictionReason
        /// What the leader saw, e.g. the queue's bytes and frames when it was full, or the wire
        /// error; the same text as the `detail` of the `follower evicted` log line.
        public var detail: String
        /// When the follower was evicted, in wall-clock time.
        public var at: Date
    }
}

extension ReplicationLeader {
    /// Where the leader and each follower stand right now.
    public func status() -> LeaderStatus {
        let counters = core.counters
        let lastLSN = core.lastAssignedLSN
        let backlog = core.backlogRange
        let now = ContinuousClock.now
        let wallClock = Date()
        let followers = core.followers.map { follower in
            let state: LeaderStatus.FollowerState = switch follower.mode {
            case .syncing: .syncing
            case .catchingUp: .catchingUp
            case .live: .live
            }
            return LeaderStatus.Follower(
                nodeID: follower.nodeID, address: follower.remoteAddress, state: state, ackedLSN: follower.ackedLSN,
                sentLSN: follower.sentLSN, lagLSNs: lastLSN - min(lastLSN, follower.ackedLSN),
                lagBytes: follower.lagBytes, lagSeconds: follower.lagSeconds(at: now),
                queuedBytes: follower.queue.queuedBytes, queuedFrames: follower.queue.queuedFrames,
                sentBytes: follower.sentBytes, ackedBytes: follower.ackedBytes, fullSync: follower.syncProgress
            )
        }
        let inSync = core.inSyncSnapshot
        return LeaderStatus(
            nodeID: configuration.nodeID, epoch: epoch, policy: configuration.policy, isr: inSync.members,
            confirmedLSN: inSync.confirmedLSN, notEnoughReplicasErrors: counters.notEnoughReplicasErrors,
            throttledProducers: core.throttledProducers, lastLSN: lastLSN, followers: followers.sorted { $0.nodeID < $1.nodeID },
            evictions: counters.evictions,
            recentEvictions: counters.recentEvictions.map { eviction in
                // Monotonic instants become wall-clock dates only for the snapshot.
                LeaderStatus.Eviction(nodeID: eviction.nodeID, reason: eviction.reason, detail: eviction.detail, at: wallClock - (now - eviction.at).timeInterval)
            },
            fullSyncs: counters.fullSyncs, partialResyncs: counters.partialResyncs, epochResumes: counters.epochResumes,
            fullSyncBytes: counters.syncContentBytes, fullSyncWireBytes: counters.syncWireBytes, sealedBatches: counters.sealedBatches,
            payloadBytes: counters.payloadBytes, wireBytes: counters.wireBytes, backlogBytes: backlog.bytes, backlogFirstLSN: backlog.first,
            steppedDown: core.steppedDown, oldestLocalWriteSeconds: core.localWrites.oldestAge(at: now).map(\.timeInterval)
        )
    }
}

extension Duration {
    /// Seconds as Foundation counts them.
    fileprivate var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
