import ArgumentParser
import Logging

/// `replication-node`: runs one replication leader or follower as its own process.
///
/// The leader can drive itself with a built-in load generator, and both roles can write a
/// status file, so a cluster can be tried by hand or from a test without a broker.
@main
struct ReplicationNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replication-node",
        abstract: "Run a BrokerReplication leader or follower process.",
        subcommands: [LeaderCommand.self, FollowerCommand.self]
    )

    /// Sends every log line at `level` or above to stderr, as text or as one JSON object per
    /// line; call once, first thing in a subcommand.
    static func bootstrapLogging(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                return JSONLogHandler(label: label, logLevel: level)
            }
        }
    }
}
