import ArgumentParser
import BrokerReplication
import BrokerReplicationEtcd

/// `mini-broker node`: one node of an HA cluster. etcd elects the leader; the others follow
/// it, and one of them takes over when it fails.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run as one node of a cluster whose leader etcd elects, with automatic failover.")

    @OptionGroup var options: BrokerOptions

    @Option(help: ArgumentHelp("Where this node listens for followers while it leads; advertised to them.", valueName: "host:port"))
    var replication: String

    @Option(name: .customLong("node-id"), help: "This node's name; keep it stable across restarts.")
    var nodeID: String

    @Option(help: ArgumentHelp("The etcd members that elect the leader and store the in-sync set.", valueName: "etcd://host:port[,host:port...][/prefix]"))
    var coordinator: String

    @Option(name: .customLong("lease-ttl"), help: "Seconds a leader's etcd lease lasts without renewal: how long a failover waits for a dead leader.")
    var leaseTTL = 10

    @Option(name: .customLong("segment-bytes"), help: "Start a queue's next segment file once its current one holds this many bytes.")
    var segmentBytes = 1024 * 1024

    @Flag(name: .customLong("unclean-leader-election"), help: "Let a node outside the in-sync set lead when no member can (may lose confirmed writes).")
    var uncleanLeaderElection = false

    func run() async throws {
        let (logger, registry) = MiniBroker.bootstrap()
        let replicationAddress = try HostPort(replication, flag: "--replication")
        _ = try HostPort(options.http, flag: "--http")
        let endpoint = try EtcdEndpoint(url: coordinator)
        var leaderConfiguration = ReplicationLeaderConfiguration(dataDirectory: options.dataDirectory, clusterID: options.clusterID, nodeID: nodeID)
        leaderConfiguration.host = replicationAddress.host
        leaderConfiguration.port = replicationAddress.port
        var followerConfiguration = ReplicationFollowerConfiguration(
            dataDirectory: options.dataDirectory, leaderHost: replicationAddress.host, leaderPort: replicationAddress.port,
            clusterID: options.clusterID, nodeID: nodeID)
        let settings = try await options.loadConfiguration()
        try settings.apply(to: &leaderConfiguration)
        try settings.apply(to: &followerConfiguration)
        var configuration = ClusterNodeConfiguration(leader: leaderConfiguration, follower: followerConfiguration, clientAddress: options.http)
        configuration.uncleanLeaderElection = uncleanLeaderElection
        let election = try EtcdElection(endpoint: endpoint, nodeID: nodeID, leaseTTL: .seconds(leaseTTL), logger: logger)
        let node = try ClusterNode(configuration: configuration, election: election, secret: SharedSecret(contentsOfFile: options.secretFile), logger: logger)
        let routes = BrokerRoutes(role: .node(node, NodeSegments(dataDirectory: options.dataDirectory, segmentBytes: segmentBytes)), registry: registry)
        try await options.serve(node, routes: routes, logger: logger)
    }
}
