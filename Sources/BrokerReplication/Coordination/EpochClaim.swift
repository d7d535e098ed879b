/// A node's claim of a new leader epoch, decided against the stored ``CoordinatorState`` by a
/// pure function, so every ``Coordinator`` applies the same rule inside its compare-and-set.
public struct EpochClaim: Sendable, Equatable {
    /// What must hold before the claim is granted.
    public enum Requirement: Sendable, Equatable {
        /// Only that no newer or equal epoch is stored: a leader starting on its own data, or a
        /// forced (unclean) promotion.
        case newerEpoch
        /// The stored epoch is `dataEpoch`, the epoch of the claimant's data, and the claimant
        /// is in its in-sync set or is the leader that claimed it; or no epoch was ever
        /// stored. Such a node holds every confirmed write (in evict mode), so it is safe to
        /// promote (Docs/Semantics.md, "Failover").
        case inSync(dataEpoch: UInt64)
    }

    /// The epoch to take; it must be newer than the stored one.
    public var epoch: UInt64
    /// The node taking it.
    public var nodeID: String
    /// What must hold first.
    public var requirement: Requirement

    /// A claim of `epoch` by `nodeID`.
    ///
    /// - Parameters:
    ///   - epoch: the epoch to take.
    ///   - nodeID: the node taking it.
    ///   - requirement: what must hold first.
    public init(epoch: UInt64, nodeID: String, requirement: Requirement) {
        self.epoch = epoch
        self.nodeID = nodeID
        self.requirement = requirement
    }

    /// The state to store when `stored` grants the claim, or why it does not.
    ///
    /// - Parameter stored: the coordinator's state, read in the same compare-and-set.
    /// - Returns: `stored` itself when it already records this claim (nothing to write), or
    ///   `claim.epoch` with an empty in-sync set and `claim.nodeID` as leader.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when
    ///   `stored` holds this epoch or a newer one for another node,
    ///   ``ReplicationError/Code/promotionRefused`` when the requirement does not hold.
    public func apply(to stored: CoordinatorState) throws(ReplicationError) -> CoordinatorState {
        if stored.epoch == epoch, stored.leader == nodeID { return stored }
        guard stored.epoch < epoch else {
            throw .coordination("epoch \(stored.epoch) was claimed by \(stored.leader.map { "\"\($0)\"" } ?? "another leader"); \"\(nodeID)\" cannot claim epoch \(epoch)")
        }
        if case .inSync(let dataEpoch) = requirement, stored.epoch > 0 {
            guard stored.epoch == dataEpoch else {
                throw .promotionRefused("the coordinator holds epoch \(stored.epoch), but \"\(nodeID)\" holds data of epoch \(dataEpoch): it may lack confirmed writes")
            }
            guard stored.inSyncReplicas.contains(nodeID) || stored.leader == nodeID else {
                let members = stored.inSyncReplicas.isEmpty ? "empty" : stored.inSyncReplicas.joined(separator: ", ")
                throw .promotionRefused("\"\(nodeID)\" is neither in the in-sync set of epoch \(stored.epoch) (\(members)) nor its leader, so it may lack confirmed writes")
            }
        }
        return CoordinatorState(epoch: epoch, inSyncReplicas: [], leader: nodeID)
    }
}
