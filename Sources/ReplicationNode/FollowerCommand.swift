import ArgumentParser
import BrokerReplication
import Foundation
import Logging
import ServiceLifecycle

/// `replication-node follower`: follows a leader into its own data directory, and becomes a
/// leader itself when promoted.
struct FollowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follower",
        abstract: "Run a replication follower.",
        discussion: """
            Connects to the leader, catches up, applies every change to --data-dir, and \
            reconnects after failures until SIGTERM or SIGINT, which make it ack everything it \
            applied before it exits. SIGUSR1 promotes it: it checks \
            that it is in the in-sync set --coordinator last stored, stops following, and serves \
            as leader on --promote-listen. --promote does the same at once, without following.
            """
    )

    @OptionGroup var node: NodeOptions
    @OptionGroup var metricsOptions: MetricsOptions

    @Option(help: ArgumentHelp("The leader's replication address (leader).", valueName: "host:port"))
    var leader: String?

    @Option(name: .customLong("node-id"), help: "This follower's name; the leader knows it by this (nodeID; default: the id stored in --data-dir's .brpl/node-id, created on first start).")
    var nodeID: String?

    @Flag(name: .customLong("promote"), help: "Promote this data directory at once and serve as leader (needs --coordinator and --promote-listen).")
    var promoteNow = false

    @Option(name: .customLong("promote-listen"), help: ArgumentHelp("Where to listen for followers once promoted.", valueName: "host:port"))
    var promoteListen: String?

    @Flag(name: .customLong("force-promotion"), help: "Promote even when this follower is not in the last stored in-sync set (it may lack confirmed writes).")
    var forcePromotion = false

    func validate() throws {
        if let promoteListen { _ = try HostPort(parsing: promoteListen, flag: "--promote-listen", ports: 0...65535) }
        if (promoteNow || forcePromotion), promoteListen == nil {
            throw ValidationError("--promote and --force-promotion need --promote-listen")
        }
    }

    func run() async throws {
        var commandLine = try node.commandLine()
        commandLine["leader"] = leader
        commandLine["nodeID"] = nodeID
        commandLine["metrics"] = metricsOptions.address
        let settings = try await NodeSettings.read(commandLine: commandLine, configFile: node.configFile, role: .follower)
        if (promoteNow || forcePromotion), settings.coordinatorFile == nil {
            throw ValidationError("--promote and --force-promotion need --coordinator (the leader's coordinator file)")
        }
        ReplicationNode.bootstrapLogging(format: settings.logFormat, level: settings.logLevel)
        let logger = Logger(label: "replication-node")
        let address = settings.address
        let health = HealthSource()
        let endpoint = MetricsOptions.makeEndpoint(address: settings.metrics, health: health, logger: logger)
        // Never the process id: a restarted follower must stay the node the in-sync set names.
        let nodeID = try settings.nodeID ?? ReplicationFollowerConfiguration.storedNodeID(dataDirectory: settings.dataDirectory)
        var configuration = ReplicationFollowerConfiguration(
            dataDirectory: settings.dataDirectory, leaderHost: address.host, leaderPort: address.port, clusterID: settings.clusterID, nodeID: nodeID
        )
        settings.replication.apply(to: &configuration)
        let secret = settings.secret
        let follower = try ReplicationFollower(configuration: configuration, secret: secret, logger: Logger(label: "BrokerReplication.follower"))
        health.report(follower)
        let statusFile = settings.statusFile
        let coordinator = settings.coordinatorFile.map { LocalCoordinator(path: $0) }
        let force = forcePromotion
        let promoteNow = self.promoteNow
        let promoteListen = try promoteListen.map { try HostPort(parsing: $0, flag: "--promote-listen", ports: 0...65535) }

        // One service: following, and serving as leader after a promotion. Its graceful shutdown
        // reaches the follower (last commit and ack) or the promoted leader's own group (drain).
        let running = ClosureService {
            let promotion: Promotion?
            if promoteNow, let coordinator {
                promotion = try await follower.promote(coordinator: coordinator, force: force)
            } else {
                logger.info("following", metadata: ["leader": "\(address)", "node": "\(nodeID)", "dataDirectory": "\(settings.dataDirectory)"])
                promotion = try await Self.follow(follower, statusFile: statusFile, coordinator: coordinator, force: force, logger: logger)
            }
            guard let promotion else { return }
            guard let promoteListen else {
                logger.error("promoted, but there is no --promote-listen address to serve on; exiting")
                return
            }
            var leaderConfiguration = ReplicationLeaderConfiguration(dataDirectory: settings.dataDirectory, clusterID: settings.clusterID, nodeID: nodeID)
            leaderConfiguration.host = promoteListen.host
            leaderConfiguration.port = promoteListen.port
            settings.replication.apply(to: &leaderConfiguration)
            leaderConfiguration.coordinator = coordinator
            let leader = try ReplicationLeader(configuration: leaderConfiguration, secret: secret, logger: Logger(label: "BrokerReplication.leader"))
            logger.notice("serving as leader after promotion", metadata: ["epoch": "\(leader.epoch)", "lastDurableLSN": "\(promotion.lastDurableLSN)", "listen": "\(promoteListen)"])
            let services = LeaderCommand.services(leader, plan: nil, statusFile: statusFile, listenFlag: "--promote-listen", health: health, logger: logger)
            try await ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger)).run()
        }
        // Ending on its own (promoted, with nowhere to serve) is a clean stop too.
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: running, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "follower")]
        try await TerminationSignals.run(MetricsEndpoint.first(endpoint, services), logger: logger)
    }

    /// Follows until cancelled or shut down gracefully (nil), or promoted through SIGUSR1 (the
    /// promotion). A refused promotion is logged and the follower keeps following. The status
    /// file's last write comes after the follower stopped, so it shows its last ack.
    static func follow(
        _ follower: ReplicationFollower, statusFile: String?, coordinator: LocalCoordinator?, force: Bool, logger: Logger
    ) async throws -> Promotion? {
        try await withThrowingTaskGroup(of: Promotion?.self) { group in
            if let statusFile {
                group.addTask {
                    await StatusFileWriter(path: statusFile, logger: logger).run {
                        FollowerNodeStatus(status: follower.status(), nodeID: follower.configuration.nodeID)
                    }
                    return nil
                }
            }
            group.addTask {
                for await _ in PromotionSignal.requests() {
                    guard let coordinator else {
                        logger.error("SIGUSR1: cannot promote without --coordinator (the leader's coordinator file)")
                        continue
                    }
                    do {
                        return try await follower.promote(coordinator: coordinator, force: force)
                    } catch {
                        logger.error("promotion refused; still following", metadata: ["reason": "\(error)"])
                    }
                }
                return nil
            }
            // Ends when cancelled, after a graceful shutdown, or once promote() has stopped it.
            group.addTask {
                try await follower.run()
                return nil
            }
            while let result = try await group.next() {
                if let promotion = result {
                    group.cancelAll()
                    return promotion
                }
                // Without a shutdown, the follower stopped for a promotion: wait for its result.
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
            }
            group.cancelAll()
            return nil
        }
    }
}
