import ArgumentParser
import BrokerReplication
import Foundation
import Logging

/// `replication-node follower`: follows a leader into its own data directory.
struct FollowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follower",
        abstract: "Run a replication follower.",
        discussion: "Connects to the leader, catches up, applies every change to --data-dir, and reconnects after failures until SIGTERM or SIGINT."
    )

    @OptionGroup var node: NodeOptions

    @Option(help: ArgumentHelp("The leader's replication address.", valueName: "host:port"))
    var leader: String

    @Option(name: .customLong("node-id"), help: "This follower's name; the leader knows it by this (default follower-<pid>; set it to keep one name across restarts).")
    var nodeID: String?

    func validate() throws {
        _ = try HostPort(parsing: leader, flag: "--leader", ports: 1...65535)
        try validateNodeID(nodeID)
    }

    func run() async throws {
        ReplicationNode.bootstrapLogging()
        let logger = Logger(label: "replication-node")
        let address = try HostPort(parsing: leader, flag: "--leader", ports: 1...65535)
        let nodeID = self.nodeID ?? "follower-\(ProcessInfo.processInfo.processIdentifier)"
        var configuration = ReplicationFollowerConfiguration(
            dataDirectory: node.dataDirectory, leaderHost: address.host, leaderPort: address.port, clusterID: node.clusterID, nodeID: nodeID
        )
        try node.loadConfiguration().apply(to: &configuration)
        let follower = try ReplicationFollower(configuration: configuration, secret: try node.loadSecret(), logger: Logger(label: "BrokerReplication.follower"))
        let statusFile = node.statusFile
        logger.info("following", metadata: ["leader": "\(address)", "node": "\(nodeID)", "dataDirectory": "\(node.dataDirectory)"])

        try await TerminationSignals.run(logger: logger) {
            try await withThrowingDiscardingTaskGroup { group in
                if let statusFile {
                    group.addTask {
                        await StatusFileWriter(path: statusFile, logger: logger).run {
                            FollowerNodeStatus(status: follower.status(), nodeID: nodeID)
                        }
                    }
                }
                try await follower.run()
                group.cancelAll()
            }
        }
    }
}
