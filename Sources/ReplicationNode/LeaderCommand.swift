import ArgumentParser
import BrokerReplication
import Foundation
import Logging
import NIOCore

/// `replication-node leader`: serves followers and optionally drives itself with generated load.
struct LeaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader",
        abstract: "Run a replication leader.",
        discussion: """
            With --load-rate, the leader appends generated records round-robin to \
            segments/segment-<i> for --load-duration seconds, flushes, logs a summary line, \
            and keeps serving until SIGTERM or SIGINT.
            """
    )

    @OptionGroup var node: NodeOptions

    @Option(help: ArgumentHelp("The address to listen on for followers.", valueName: "host:port"))
    var listen: String

    @Option(name: .customLong("node-id"), help: "This node's name in logs and handshakes.")
    var nodeID: String = "leader"

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
        _ = try HostPort(parsing: listen, flag: "--listen", ports: 0...65535)
        try validateNodeID(nodeID)
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
        ReplicationNode.bootstrapLogging()
        let logger = Logger(label: "replication-node")
        let address = try HostPort(parsing: listen, flag: "--listen", ports: 0...65535)
        var configuration = ReplicationLeaderConfiguration(dataDirectory: node.dataDirectory, clusterID: node.clusterID, nodeID: nodeID)
        configuration.host = address.host
        configuration.port = address.port
        try node.loadConfiguration().apply(to: &configuration)
        if let coordinatorFile = node.coordinatorFile { configuration.coordinator = LocalCoordinator(path: coordinatorFile) }
        let leader = try ReplicationLeader(configuration: configuration, secret: try node.loadSecret(), logger: Logger(label: "BrokerReplication.leader"))
        let plan = try loadPlan()
        let statusFile = node.statusFile
        try await TerminationSignals.run(logger: logger) {
            try await Self.serve(leader, plan: plan, statusFile: statusFile, listenFlag: "--listen", logger: logger)
        }
    }

    /// Serves followers (and generates the planned load) until the task is cancelled.
    static func serve(_ leader: ReplicationLeader, plan: LoadPlan?, statusFile: String?, listenFlag: String, logger: Logger) async throws {
        let progress = LoadProgress()
        try await withThrowingDiscardingTaskGroup { group in
            if let statusFile {
                group.addTask {
                    await StatusFileWriter(path: statusFile, logger: logger).run {
                        LeaderNodeStatus(status: leader.status(), loadFinished: progress.finished, loadRecords: progress.records)
                    }
                }
            }
            if let plan {
                group.addTask {
                    _ = try await leader.listeningPort()
                    let summary = try await LoadGenerator(plan: plan, logger: logger).run(on: leader, progress: progress)
                    logger.info("\(summary.logLine); still serving")
                }
            }
            do {
                try await leader.run()
            } catch let error as IOError where [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(error.errnoCode) {
                // The address cannot be bound: say which flag to change.
                let configuration = leader.configuration
                throw ListenError(description: "cannot listen on \(configuration.host):\(configuration.port) (\(listenFlag)): \(error)")
            }
            group.cancelAll()
        }
    }
}

/// The leader could not bind its `--listen` address.
struct ListenError: Error, CustomStringConvertible {
    let description: String
}
