import BrokerReplication

/// The leader's status file: ``LeaderStatus`` with the role and the load generator's progress
/// as extra top-level keys.
struct LeaderNodeStatus: Encodable {
    var status: LeaderStatus
    var loadFinished: Bool
    var loadRecords: Int

    private enum CodingKeys: String, CodingKey { case role, loadFinished, loadRecords }

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("leader", forKey: .role)
        try container.encode(loadFinished, forKey: .loadFinished)
        try container.encode(loadRecords, forKey: .loadRecords)
    }
}

/// The follower's status file: ``ReplicationFollower/FollowerStatus`` with the role and the
/// node id as extra top-level keys.
struct FollowerNodeStatus: Encodable {
    var status: ReplicationFollower.FollowerStatus
    var nodeID: String

    private enum CodingKeys: String, CodingKey { case role, nodeID }

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("follower", forKey: .role)
        try container.encode(nodeID, forKey: .nodeID)
    }
}
