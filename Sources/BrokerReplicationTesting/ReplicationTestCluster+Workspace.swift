import BrokerReplication
import Foundation
import Logging

extension ReplicationTestCluster {
    /// A temporary directory, a shared secret and loopback configurations for a leader and its
    /// followers: what ``ReplicationTestCluster/run(followers:secret:configureLeader:configureFollower:logger:_:)``
    /// is built on, for a broker's tests that create leaders and followers of their own (to
    /// restart a leader on the same directory, or run two at once).
    ///
    /// The directory, with every data directory in it, is removed when the workspace is
    /// released.
    ///
    /// ```swift
    /// let workspace = try ReplicationTestCluster.Workspace()
    /// let leader = try ReplicationLeader(configuration: workspace.leaderConfiguration(), secret: workspace.secret)
    /// ```
    public final class Workspace: Sendable {
        /// The temporary directory; each node's data directory is `<root>/<name>`.
        public let root: String
        /// The cluster id every configuration of this workspace uses.
        public let clusterID = "test-cluster"
        /// The shared secret of every node of this workspace.
        public let secret: SharedSecret

        /// Creates the temporary directory.
        ///
        /// - Parameter secret: the cluster's shared secret; nil (the default): a fixed test secret.
        /// - Throws: Foundation's error when the directory cannot be created; no `ReplicationError`.
        public init(secret: SharedSecret? = nil) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            // A fixed secret of 32 bytes: it cannot fail SharedSecret's length rule.
            self.secret = try secret ?? SharedSecret(bytes: Array("replication test cluster secret!".utf8))
        }

        deinit {
            try? FileManager.default.removeItem(atPath: root)
        }

        /// Logs nowhere, unless the environment sets `BRPL_TEST_LOG` (then everything from debug up).
        public static let logger: Logger = {
            var logger = Logger(label: "test")
            logger.logLevel = ProcessInfo.processInfo.environment["BRPL_TEST_LOG"] == nil ? .critical : .debug
            return logger
        }()

        /// A leader listening on a free loopback port, its data directory at `<root>/<name>`.
        ///
        /// - Parameter name: the leader's node id and data directory name (default `leader`).
        /// - Returns: a configuration to adjust before creating the leader.
        public func leaderConfiguration(_ name: String = "leader") -> ReplicationLeaderConfiguration {
            var configuration = ReplicationLeaderConfiguration(dataDirectory: root + "/" + name, clusterID: clusterID, nodeID: name)
            configuration.host = "127.0.0.1"
            configuration.port = 0
            return configuration
        }

        /// A follower of the leader at `127.0.0.1:port`, its data directory at `<root>/<name>`,
        /// reconnecting faster than by default (first delay 20 ms, at most 200 ms).
        ///
        /// - Parameters:
        ///   - name: the follower's node id and data directory name.
        ///   - port: the port of the leader, or of a proxy in front of it.
        /// - Returns: a configuration to adjust before creating the follower.
        public func followerConfiguration(_ name: String, port: Int) -> ReplicationFollowerConfiguration {
            var configuration = ReplicationFollowerConfiguration(
                dataDirectory: root + "/" + name, leaderHost: "127.0.0.1", leaderPort: port, clusterID: clusterID, nodeID: name
            )
            configuration.reconnectBase = .milliseconds(20)
            configuration.reconnectCap = .milliseconds(200)
            return configuration
        }

        /// Polls `condition` every 20 ms until it holds or `timeout` passes.
        ///
        /// - Parameters:
        ///   - timeout: how long to poll (default 60 s).
        ///   - condition: true once the wait is over; checked once more at the deadline.
        /// - Returns: whether `condition` held in time.
        /// - Throws: what `condition` throws; `CancellationError` when the task is cancelled.
        public static func eventually(timeout: Duration = .seconds(60), _ condition: () throws -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if try condition() { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try condition()
        }
    }
}
