/// How a ``ClusterNode`` leads, follows and campaigns.
///
/// The leader and follower configurations are the ones the node uses in each role; they must
/// name the same data directory, cluster and node. The follower's `leaderHost` and
/// `leaderPort` are replaced by the elected leader's address.
public struct ClusterNodeConfiguration: Sendable {
    /// The node as a leader; `host` and `port` are where it listens for followers and what it
    /// advertises to them, so `port` must not be 0. Its `coordinator` is replaced by the
    /// election's.
    public var leader: ReplicationLeaderConfiguration
    /// The node as a follower; its leader address comes from the election.
    public var follower: ReplicationFollowerConfiguration
    /// What this node advertises to the broker's clients while it leads (for example its HTTP
    /// `host:port`); nil when the broker has none.
    public var clientAddress: String?
    /// How often the node looks at the election and, while it leads, at its lease and its
    /// local writes (default 200 ms). Keep it well below the lease's safety margin.
    public var pollInterval: Duration = .milliseconds(200)
    /// A leader whose oldest local write has run this long resigns (default 10 s): a leader
    /// with a stalled disk would otherwise keep its lease and the cluster would stop.
    public var writeStallLimit: Duration = .seconds(10)
    /// Lets a node outside the last stored in-sync set lead when no member can (default false,
    /// as Kafka's `unclean.leader.election.enable`). Such a node may lack confirmed writes,
    /// which are then lost; every such election is logged at critical level.
    public var uncleanLeaderElection = false

    /// A node's configuration from its two roles.
    ///
    /// - Parameters:
    ///   - leader: the node as a leader (its listening address is advertised to followers).
    ///   - follower: the node as a follower (its leader address is replaced).
    ///   - clientAddress: what clients use to reach the node while it leads (default nil).
    public init(leader: ReplicationLeaderConfiguration, follower: ReplicationFollowerConfiguration, clientAddress: String? = nil) {
        self.leader = leader
        self.follower = follower
        self.clientAddress = clientAddress
    }

    /// Checks both roles and that they describe the same node.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   naming the setting.
    public func validate() throws(ReplicationError) {
        try leader.validate()
        try follower.validate()
        if leader.dataDirectory != follower.dataDirectory { throw .invalidSetting("dataDirectory", "must be the same for the leader and the follower role") }
        if leader.nodeID != follower.nodeID { throw .invalidSetting("nodeID", "must be the same for the leader and the follower role") }
        if leader.clusterID != follower.clusterID { throw .invalidSetting("clusterID", "must be the same for the leader and the follower role") }
        if leader.port == 0 { throw .invalidSetting("leader.port", "must be a fixed port: followers find the leader by the address it advertises") }
        if pollInterval <= .zero { throw .invalidSetting("pollInterval", "must be positive") }
        if writeStallLimit <= .zero { throw .invalidSetting("writeStallLimit", "must be positive") }
    }
}
