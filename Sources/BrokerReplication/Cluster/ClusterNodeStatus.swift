/// A snapshot of a ``ClusterNode``: its role, who leads, and its role's own status.
///
/// Its JSON encoding is part of the module's interface (`mini-broker node` serves it as
/// `GET /status`): `role`, `nodeID`, `epoch` and `leader` are always present (`leader` is
/// `null` when no leader is known).
public struct ClusterNodeStatus: Sendable, Codable, Equatable {
    /// What the node does now; in JSON its raw value.
    public enum Role: String, Sendable, Codable {
        /// It leads: it takes writes and confirms them.
        case leader
        /// It follows the elected leader.
        case follower
        /// No leader is known, or this node is between roles (campaigning, stepping down).
        case candidate
    }

    /// What the node does now.
    public var role: Role
    /// This node's id.
    public var nodeID: String
    /// The epoch this node knows of: its own as leader, else the newest of its data's and
    /// the coordinator's last read.
    public var epoch: UInt64
    /// The leader's node id (this node's own while it leads), nil when none is known.
    public var leader: String?
    /// Where the broker's clients reach the leader, nil when unknown or not advertised.
    public var leaderClientAddress: String?
    /// Why this node may not lead now (outside the stored in-sync set, data of an older
    /// epoch), nil when it may; it then does not campaign.
    public var notEligible: String?
    /// The last role change's or failure's reason, e.g. why the node stepped down.
    public var lastEvent: String?
    /// The leader's status while this node leads.
    public var leaderStatus: LeaderStatus?
    /// The follower's status while this node follows.
    public var followerStatus: ReplicationFollower.FollowerStatus?

    private enum CodingKeys: String, CodingKey {
        case role, nodeID, epoch, leader, leaderClientAddress, notEligible, lastEvent, leaderStatus, followerStatus
    }

    /// Encodes `leader` and `leaderClientAddress` as `null` when unknown (scripts read them),
    /// and leaves out the other absent fields.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        try container.encode(nodeID, forKey: .nodeID)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(leader, forKey: .leader)
        try container.encode(leaderClientAddress, forKey: .leaderClientAddress)
        try container.encodeIfPresent(notEligible, forKey: .notEligible)
        try container.encodeIfPresent(lastEvent, forKey: .lastEvent)
        try container.encodeIfPresent(leaderStatus, forKey: .leaderStatus)
        try container.encodeIfPresent(followerStatus, forKey: .followerStatus)
    }
}
