/// What a broker needs to start a ``ReplicationLeader`` on a promoted follower's data
/// directory: the leader started there next takes `epoch`.
public struct Promotion: Sendable, Equatable, Codable {
    /// The epoch of the leader this follower followed (0 if it never completed a sync).
    public let previousEpoch: UInt64
    /// Every change of `previousEpoch` through this LSN is durable in the data directory.
    public let lastDurableLSN: UInt64
    /// The epoch the next ``ReplicationLeader`` on this data directory takes.
    public let epoch: UInt64
    /// True when the in-sync check was skipped (`force: true`).
    public let forced: Bool
}

/// Decides whether a follower may become leader: a pure function of its durable position and
/// the coordinator's state.
///
/// In evict mode every member of the persisted in-sync set holds every confirmed write (see
/// ``InSyncReplicas``), so a member is safe to promote. Anything else may lack confirmed
/// writes and is refused with the reason.
enum PromotionCheck {
    static func refusal(nodeID: String, position: FollowerPosition, cluster: CoordinatorState) -> String? {
        if position.epoch == 0 {
            return "follower \"\(nodeID)\" holds no complete copy of the leader's data (it never finished a full sync, or one was interrupted)"
        }
        if cluster.epoch > position.epoch {
            return "the coordinator holds epoch \(cluster.epoch), newer than this follower's data (epoch \(position.epoch)): another leader has taken over since"
        }
        if cluster.epoch < position.epoch {
            return "the coordinator holds epoch \(cluster.epoch), older than this follower's data (epoch \(position.epoch)): it is not the coordinator the leader used"
        }
        if !cluster.inSyncReplicas.contains(nodeID) {
            let members = cluster.inSyncReplicas.isEmpty ? "empty" : cluster.inSyncReplicas.joined(separator: ", ")
            return "follower \"\(nodeID)\" is not in the last persisted in-sync set of epoch \(cluster.epoch) (\(members)), so it may lack confirmed writes; pass force: true to promote it anyway"
        }
        return nil
    }
}
