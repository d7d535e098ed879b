/// What a cluster must remember across leader changes: the leader epoch, who claimed it, and
/// the in-sync set.
public struct CoordinatorState: Codable, Sendable, Equatable {
    /// The epoch of the newest leader.
    public var epoch: UInt64
    /// Node ids of the followers in sync with that leader, as last persisted.
    public var inSyncReplicas: [String]
    /// The node that claimed `epoch`; nil when none did yet, or for a state stored before
    /// claims recorded it.
    public var leader: String?

    /// A state with the given epoch, in-sync set and leader.
    ///
    /// - Parameters:
    ///   - epoch: the epoch of the newest leader (0: no leader has claimed one yet).
    ///   - inSyncReplicas: node ids of the followers in sync with that leader.
    ///   - leader: the node that claimed `epoch` (default nil).
    public init(epoch: UInt64, inSyncReplicas: [String], leader: String? = nil) {
        self.epoch = epoch
        self.inSyncReplicas = inSyncReplicas
        self.leader = leader
    }
}

/// Durable storage for ``CoordinatorState`` (Docs/Semantics.md, "In-sync replicas and confirms").
///
/// The leader persists every ISR change before any confirm relies on it, and each new epoch is
/// claimed through `claimEpoch` with one compare-and-set, so a store shared by the cluster can
/// fence an old leader. ``LocalCoordinator`` is the embedded default: a file on the leader's
/// own disk. An etcd-backed coordinator lives in the `BrokerReplicationEtcd` module.
public protocol Coordinator: Sendable {
    /// The stored state; epoch 0 and an empty set when nothing was stored yet.
    ///
    /// - Throws: when the state cannot be read. ``LocalCoordinator`` throws ``ReplicationError``
    ///   with code ``ReplicationError/Code/coordination``; a broker's own coordinator may throw
    ///   its own error, which reaches the caller unchanged.
    func load() async throws -> CoordinatorState
    /// Applies `claim` to the stored state as one compare-and-set (``EpochClaim/apply(to:)``
    /// decides) and stores the result.
    ///
    /// A leader calls this from ``ReplicationLeader/run()`` before it serves followers, and
    /// ``ReplicationFollower/promote(coordinator:force:)`` before it stops following. A claim
    /// the stored state already records for the same node succeeds again without a change, so
    /// a promotion's claim and the promoted leader's own claim agree.
    ///
    /// - Parameter claim: the epoch to take, the node taking it, and what must hold first.
    /// - Returns: the stored state: `claim.epoch`, an empty in-sync set, `claim.nodeID` as leader.
    /// - Throws: what ``EpochClaim/apply(to:)`` refuses (``ReplicationError/Code/coordination``
    ///   for an epoch claimed by another leader, ``ReplicationError/Code/promotionRefused`` for
    ///   a node not eligible), or when the claim cannot be stored.
    func claimEpoch(_ claim: EpochClaim) async throws -> CoordinatorState
    /// Stores a new in-sync set for `epoch`; fails when `epoch` is no longer the newest.
    ///
    /// Confirms rely on a new set only once this returns; when it throws, the leader keeps
    /// the previous set and tries again on a later tick.
    ///
    /// - Parameters:
    ///   - members: node ids of the followers now in sync, in any order.
    ///   - epoch: the epoch of the leader storing the set.
    /// - Throws: when `epoch` is not the stored epoch, the caller no longer holds the
    ///   leadership (a coordinator tied to an election), or the set cannot be stored.
    ///   ``LocalCoordinator`` throws ``ReplicationError`` with code
    ///   ``ReplicationError/Code/coordination``.
    func storeInSyncReplicas(_ members: [String], epoch: UInt64) async throws
}
