/// Who leads the cluster, as an election records it: what followers and clients need to
/// reach that node.
public struct LeaderRecord: Codable, Sendable, Equatable {
    /// The leader's node id.
    public var nodeID: String
    /// Where its followers connect (the leader's replication address).
    public var replicationHost: String
    /// The port its followers connect to.
    public var replicationPort: Int
    /// Where the broker's clients reach it (for example an HTTP `host:port`); nil when the
    /// broker advertises none.
    public var clientAddress: String?

    /// A record of the leader `nodeID`.
    ///
    /// - Parameters:
    ///   - nodeID: the leader's node id.
    ///   - replicationHost: where its followers connect.
    ///   - replicationPort: the port its followers connect to.
    ///   - clientAddress: where the broker's clients reach it (default nil).
    public init(nodeID: String, replicationHost: String, replicationPort: Int, clientAddress: String? = nil) {
        self.nodeID = nodeID
        self.replicationHost = replicationHost
        self.replicationPort = replicationPort
        self.clientAddress = clientAddress
    }
}

/// A leader election that a ``ClusterNode`` campaigns in, with a ``Coordinator`` whose writes
/// it fences: they succeed only while this node holds the leadership.
///
/// `BrokerReplicationEtcd` provides one over etcd (a lease, a leader key created only if
/// absent, writes in transactions that check the key still belongs to this node's lease).
public protocol LeaderElection: Sendable {
    /// The coordinator that stores the cluster state; a write that a confirm or a promotion
    /// relies on succeeds only while this node leads.
    var coordinator: any Coordinator { get }

    /// Keeps this node's leadership alive (an etcd lease's keepalives) until the task is
    /// cancelled; then gives it up. A ``ClusterNode`` runs it for as long as it runs.
    func run() async throws

    /// Tries once, without waiting, to become leader with `record`.
    ///
    /// - Parameter record: what followers and clients need to reach this node.
    /// - Returns: true when this node leads now (also when it already did), false when
    ///   another node does.
    /// - Throws: when the election cannot be reached or answers something unexpected.
    func campaign(_ record: LeaderRecord) async throws -> Bool

    /// The node that leads now, nil when none does.
    ///
    /// - Throws: when the election cannot be reached or answers something unexpected.
    func leader() async throws -> LeaderRecord?

    /// Until when this node's leadership is certain, on this host's clock: the last renewal's
    /// send time plus the lease, minus a safety margin. Nil when it does not lead (it never
    /// won, resigned, or its lease was found lost). A leader confirms nothing past it.
    func leadershipDeadline() -> ContinuousClock.Instant?

    /// Gives up the leadership at once, so another node can win without waiting for the
    /// lease to expire. Does nothing when this node does not lead.
    ///
    /// - Throws: when the election cannot be reached; the lease then expires by itself.
    func resign() async throws
}
