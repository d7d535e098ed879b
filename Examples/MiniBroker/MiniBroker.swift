import ArgumentParser
import BrokerReplication
import CoreMetrics
import Logging
import Prometheus
import ServiceLifecycle

/// `mini-broker`: a tiny message broker that embeds BrokerReplication, as an example.
///
/// The leader keeps each queue in segment files and writes them through `ReplicationLeader`;
/// a follower holds a byte-identical copy. Both serve `GET /status` and `GET /metrics` over
/// HTTP, and both run their replication service and their HTTP server in one `ServiceGroup`,
/// so SIGTERM or SIGINT shuts them down gracefully.
@main
struct MiniBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mini-broker",
        abstract: "A tiny message broker that replicates its segment files with BrokerReplication.",
        subcommands: [LeaderCommand.self, FollowerCommand.self, NodeCommand.self]
    )

    /// Logs to stderr and reports swift-metrics to a Prometheus registry; call once, first.
    static func bootstrap() -> (Logger, PrometheusCollectorRegistry) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return (Logger(label: "mini-broker"), registry)
    }
}

/// The options both roles take.
struct BrokerOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The broker's data directory (created when missing).")
    var dataDirectory: String

    @Option(help: ArgumentHelp("Where to serve HTTP: POST /queues/<name>, GET /status, GET /metrics.", valueName: "host:port"))
    var http: String

    @Option(name: .customLong("secret-file"), help: "The cluster's shared secret (at least 16 bytes).")
    var secretFile: String

    @Option(name: .customLong("cluster-id"), help: "The cluster's name; the leader and its followers must agree.")
    var clusterID = "mini-broker"

    @Option(name: .customLong("config"), help: ArgumentHelp("Replication settings as JSON; BRPL_* variables override them.", valueName: "file"))
    var configFile: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("TLS on the replication link: this node's PEM certificate chain (overrides tlsCertificateFile).", valueName: "file"))
    var tlsCertificateFile: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The PEM private key of --tls-cert (overrides tlsPrivateKeyFile).", valueName: "file"))
    var tlsPrivateKeyFile: String?

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("The PEM CA bundle the peer's certificate must chain to (overrides tlsTrustedRootsFile).", valueName: "file"))
    var tlsTrustedRootsFile: String?

    @Flag(name: .customLong("tls-require-client-cert"), help: "Leader: require a follower certificate that names the follower's node id (mutual TLS).")
    var tlsRequireClientCertificate = false

    /// The replication settings from `--config` and the environment, then the `--tls-*` options.
    func loadConfiguration() async throws -> ReplicationConfiguration {
        var configuration = try await ReplicationConfiguration.load(file: configFile)
        try configuration.overrideTLS(
            certificateFile: tlsCertificateFile, privateKeyFile: tlsPrivateKeyFile, trustedRootsFile: tlsTrustedRootsFile,
            requireClientCertificate: tlsRequireClientCertificate
        )
        return configuration
    }

    /// Runs the replication service and the HTTP server together until SIGTERM or SIGINT.
    ///
    /// On a graceful shutdown the group stops its services in reverse order: the HTTP server
    /// first (requests in flight still get their confirm), then replication (the leader waits
    /// for its followers' acks; a follower commits and acks what it applied).
    func serve(_ replication: any Service, routes: BrokerRoutes, logger: Logger) async throws {
        let address = try HostPort(http, flag: "--http")
        let server = HTTPServer(host: address.host, port: address.port, logger: logger, respond: routes.respond)
        let group = ServiceGroup(services: [replication, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

struct LeaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leader", abstract: "Accept messages and replicate them to followers.")

    @OptionGroup var options: BrokerOptions

    @Option(help: ArgumentHelp("Where followers connect.", valueName: "host:port"))
    var replication: String

    @Option(name: .customLong("node-id"), help: "This node's name.")
    var nodeID = "leader"

    @Option(name: .customLong("segment-bytes"), help: "Start a queue's next segment file once its current one holds this many bytes.")
    var segmentBytes = 1024 * 1024

    func run() async throws {
        let (logger, registry) = MiniBroker.bootstrap()
        let address = try HostPort(replication, flag: "--replication")
        var configuration = ReplicationLeaderConfiguration(dataDirectory: options.dataDirectory, clusterID: options.clusterID, nodeID: nodeID)
        configuration.host = address.host
        configuration.port = address.port
        try await options.loadConfiguration().apply(to: &configuration)
        let leader = try ReplicationLeader(configuration: configuration, secret: SharedSecret(contentsOfFile: options.secretFile))
        let segments = QueueSegments(dataDirectory: options.dataDirectory, segmentBytes: segmentBytes)
        try await options.serve(leader, routes: BrokerRoutes(role: .leader(leader, segments), registry: registry), logger: logger)
    }
}

struct FollowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "follower", abstract: "Keep a copy of a leader's segment files.")

    @OptionGroup var options: BrokerOptions

    @Option(help: ArgumentHelp("The leader's replication address.", valueName: "host:port"))
    var leader: String

    @Option(name: .customLong("node-id"), help: "This node's name; keep it stable across restarts.")
    var nodeID: String

    func run() async throws {
        let (logger, registry) = MiniBroker.bootstrap()
        let address = try HostPort(leader, flag: "--leader")
        var configuration = ReplicationFollowerConfiguration(
            dataDirectory: options.dataDirectory, leaderHost: address.host, leaderPort: address.port,
            clusterID: options.clusterID, nodeID: nodeID)
        try await options.loadConfiguration().apply(to: &configuration)
        let follower = try ReplicationFollower(configuration: configuration, secret: SharedSecret(contentsOfFile: options.secretFile))
        try await options.serve(follower, routes: BrokerRoutes(role: .follower(follower), registry: registry), logger: logger)
    }
}

/// A `host:port` command-line value.
struct HostPort {
    var host: String
    var port: Int

    init(_ text: String, flag: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(flag) expects host:port, got \(text.debugDescription)")
        }
        self.host = String(text[..<colon])
        self.port = port
    }
}
