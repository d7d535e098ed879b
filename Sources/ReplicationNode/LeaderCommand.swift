import ArgumentParser
import BrokerReplication
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// `replication-node leader`: serves followers and optionally drives itself with generated load.
struct LeaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader",
        abstract: "Run a replication leader.",
        discussion: """
            With --load-rate, the leader appends generated records round-robin to \
            segments/segment-<i> for --load-duration seconds, flushes, logs a summary line, \
            and keeps serving until SIGTERM or SIGINT, which stop the load and wait (up to 5 s) \
            for the followers to ack the last record.
            """
    )

    @OptionGroup var node: NodeOptions
    @OptionGroup var metricsOptions: MetricsOptions

    @Option(help: ArgumentHelp("The address to listen on for followers (listen).", valueName: "host:port"))
    var listen: String?

    @Option(name: .customLong("node-id"), help: "This node's name in logs and handshakes (nodeID, default \"leader\").")
    var nodeID: String?

    @Option(name: .customLong("load-rate"), help: ArgumentHelp("Generate this many records per second, or \"max\" for as fast as possible. No load without it.", valueName: "n|max"))
    var loadRate: String?

    @Option(name: .customLong("load-duration"), help: ArgumentHelp("Generate load for this many seconds (default 10).", valueName: "seconds"))
    var loadDurationSeconds: Double?

    @Option(name: .customLong("load-files"), help: ArgumentHelp("Spread the load over this many segment files (default 8).", valueName: "n"))
    var loadFiles: Int?

    @Flag(name: .customLong("load-confirm"), help: "Wait for each burst of generated records to be confirmed (waitForReplication) before the next.")
    var loadConfirm = false

    @Option(name: .customLong("load-record-bytes"), help: ArgumentHelp("Fixed-size records of this many bytes instead of broker-like JSON events of about 150 bytes.", valueName: "bytes"))
    var loadRecordBytes: Int?

    func validate() throws {
        _ = try loadPlan()
    }

    /// The load to generate, or nil without `--load-rate`.
    func loadPlan() throws -> LoadPlan? {
        guard let loadRate else {
            for (flag, given) in [("--load-duration", loadDurationSeconds != nil), ("--load-files", loadFiles != nil), ("--load-record-bytes", loadRecordBytes != nil)] where given {
                throw ValidationError("\(flag) needs --load-rate")
            }
            return nil
        }
        let plan = LoadPlan(
            rate: try LoadPlan.Rate(parsing: loadRate), durationSeconds: loadDurationSeconds ?? 10, files: loadFiles ?? 8,
            recordBytes: loadRecordBytes, confirm: loadConfirm
        )
        guard plan.durationSeconds > 0, plan.durationSeconds.isFinite else { throw ValidationError("--load-duration must be a positive number of seconds") }
        guard (1...100_000).contains(plan.files) else { throw ValidationError("--load-files must be 1...100000") }
        if let bytes = plan.recordBytes, !(1...16 * 1024 * 1024).contains(bytes) { throw ValidationError("--load-record-bytes must be 1...16777216") }
        return plan
    }

    func run() async throws {
        var commandLine = try node.commandLine()
        commandLine["listen"] = listen
        commandLine["nodeID"] = nodeID
        commandLine["metrics"] = metricsOptions.address
        let settings = try await NodeSettings.read(commandLine: commandLine, configFile: node.configFile, role: .leader)
        ReplicationNode.bootstrapLogging(format: settings.logFormat, level: settings.logLevel)
        let logger = Logger(label: "replication-node")
        let health = HealthSource()
        let endpoint = MetricsOptions.makeEndpoint(address: settings.metrics, health: health, logger: logger)
        var configuration = ReplicationLeaderConfiguration(
            dataDirectory: settings.dataDirectory, clusterID: settings.clusterID, nodeID: settings.nodeID ?? "leader"
        )
        configuration.host = settings.address.host
        configuration.port = settings.address.port
        settings.replication.apply(to: &configuration)
        if let coordinatorFile = settings.coordinatorFile { configuration.coordinator = LocalCoordinator(path: coordinatorFile) }
        let leader = try ReplicationLeader(configuration: configuration, secret: settings.secret, logger: Logger(label: "BrokerReplication.leader"))
        let plan = try loadPlan()
        let services = Self.services(leader, plan: plan, statusFile: settings.statusFile, listenFlag: "--listen", health: health, logger: logger)
        try await TerminationSignals.run(MetricsEndpoint.first(endpoint, services), logger: logger)
    }

    /// The services of a leader node, in the order a `ServiceGroup` starts them. A graceful
    /// shutdown stops them in reverse: the load first, so that the leader's drain covers its
    /// last record; then the leader, which waits for its followers' acks; then the status file,
    /// whose last write shows those acks.
    static func services(
        _ leader: ReplicationLeader, plan: LoadPlan?, statusFile: String?, listenFlag: String, health: HealthSource, logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let progress = LoadProgress()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let statusFile {
            let writer = StatusFileWriter(path: statusFile, logger: logger).service {
                LeaderNodeStatus(status: leader.status(), loadFinished: progress.finished, loadRecords: progress.records)
            }
            services.append(.init(service: writer, serviceName: "status-file"))
        }
        let serving = ClosureService {
            do {
                try await leader.run()
            } catch let error as IOError where [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(error.errnoCode) {
                // The address cannot be bound: say which flag to change.
                let configuration = leader.configuration
                throw ListenError(description: "cannot listen on \(configuration.host):\(configuration.port) (\(listenFlag)): \(error)")
            }
        }
        services.append(.init(service: serving, serviceName: "leader"))
        services.append(.init(service: ClosureService { await health.report(leader) }, successTerminationBehavior: .ignore, serviceName: "health"))
        if let plan {
            let load = ClosureService {
                let summary = try await cancelWhenGracefulShutdown {
                    _ = try await leader.listeningPort()
                    return try await LoadGenerator(plan: plan, logger: logger).run(on: leader, progress: progress)
                }
                logger.info("\(summary.logLine)\(summary.stopped ? "" : "; still serving")")
            }
            // The load ends on its own; the leader keeps serving.
            services.append(.init(service: load, successTerminationBehavior: .ignore, serviceName: "load"))
        }
        return services
    }
}

/// The leader could not bind its `--listen` address.
struct ListenError: Error, CustomStringConvertible {
    let description: String
}
