import BrokerReplication
import Foundation
import Logging
import Synchronization

/// A leader and followers in a temporary directory, each follower behind its own
/// ``FaultInjectingProxy``, for a broker's own end-to-end tests.
///
/// ```swift
/// try await ReplicationTestCluster.run(followers: ["f1", "f2"]) { cluster in
///     try await cluster.leader.append(to: "segments/1", bytes: message)
///     cluster.proxy("f2").set(.init(blackHole: true))
///     try await cluster.waitUntil("f2 is evicted") { cluster.leader.status().evictions.values.reduce(0, +) > 0 }
///     cluster.proxy("f2").set(.none)
///     try await cluster.waitForConvergence()
/// }
/// ```
///
/// Everything runs in this process over real loopback TCP with real files and fsync. The
/// directory is removed when ``run(followers:secret:configureLeader:configureFollower:logger:_:)`` returns.
public final class ReplicationTestCluster: Sendable {
    /// The temporary directory, secret and configurations the cluster runs in.
    public let workspace: Workspace
    /// The temporary directory: `<root>/leader` and `<root>/<follower name>`.
    public var root: String { workspace.root }
    /// The cluster id the leader and every follower use.
    public var clusterID: String { workspace.clusterID }
    /// The shared secret of the leader and every follower.
    public var secret: SharedSecret { workspace.secret }
    /// The running leader, with node id `leader` and its data directory at `<root>/leader`.
    public let leader: ReplicationLeader
    /// The port the leader listens on; each follower reaches it through its own proxy.
    public let leaderPort: Int
    private let logger: Logger
    private let configureFollower: @Sendable (inout ReplicationFollowerConfiguration) -> Void
    private let proxies: [String: FaultInjectingProxy]
    private let running = Mutex<[String: Running]>([:])

    private struct Running {
        let follower: ReplicationFollower
        let task: Task<Void, any Error>
    }

    /// Why a wait ended without its condition.
    public struct Timeout: Error, CustomStringConvertible {
        /// What was awaited, for how long, and the leader's status when the wait gave up.
        public let description: String
    }

    private init(
        workspace: Workspace, leader: ReplicationLeader, leaderPort: Int, proxies: [String: FaultInjectingProxy],
        configureFollower: @escaping @Sendable (inout ReplicationFollowerConfiguration) -> Void, logger: Logger
    ) {
        self.workspace = workspace
        self.leader = leader
        self.leaderPort = leaderPort
        self.proxies = proxies
        self.configureFollower = configureFollower
        self.logger = logger
    }

    /// Starts a leader and one follower per name (each behind its own proxy), runs `body`,
    /// then stops everything and removes the directory.
    ///
    /// - Parameters:
    ///   - names: the followers' names: each is a node id and the name of its data directory
    ///     under ``root``.
    ///   - secret: the cluster's shared secret; nil (the default): a fixed test secret.
    ///   - configureLeader: adjusts the leader's configuration (data directory, host and port
    ///     are set already).
    ///   - configureFollower: adjusts every follower's configuration.
    ///   - logger: where the leader and the followers log (default: nowhere).
    ///   - body: the test, given the running cluster.
    /// - Throws: what `body` throws; `ReplicationError` from the leader's or a follower's
    ///   initializer (code `ReplicationError.Code.invalidConfiguration` or
    ///   `ReplicationError.Code.storage`); what `ReplicationLeader.listeningPort()` throws
    ///   when the leader cannot listen; SwiftNIO's error when a proxy cannot listen;
    ///   Foundation's error when the temporary directory cannot be created.
    public static func run(
        followers names: [String],
        secret: SharedSecret? = nil,
        configureLeader: (inout ReplicationLeaderConfiguration) -> Void = { _ in },
        configureFollower: @escaping @Sendable (inout ReplicationFollowerConfiguration) -> Void = { _ in },
        logger: Logger = Logger(label: "ReplicationTestCluster", factory: { _ in SwiftLogNoOpLogHandler() }),
        _ body: (ReplicationTestCluster) async throws -> Void
    ) async throws {
        // Released (and its directory removed) when this returns.
        let workspace = try Workspace(secret: secret)
        var configuration = workspace.leaderConfiguration()
        configureLeader(&configuration)
        let leader = try ReplicationLeader(configuration: configuration, secret: workspace.secret, logger: logger)
        let serving = Task { try await leader.run() }
        var proxies: [String: FaultInjectingProxy] = [:]
        do {
            let port = try await leader.listeningPort()
            for name in names {
                let proxy = FaultInjectingProxy(upstreamPort: port)
                try await proxy.start()
                proxies[name] = proxy
            }
            let cluster = ReplicationTestCluster(
                workspace: workspace, leader: leader, leaderPort: port, proxies: proxies, configureFollower: configureFollower, logger: logger
            )
            for name in names { try cluster.startFollower(name) }
            do {
                try await body(cluster)
            } catch {
                await cluster.stopAll(serving: serving)
                throw error
            }
            await cluster.stopAll(serving: serving)
        } catch {
            serving.cancel()
            _ = await serving.result
            for proxy in proxies.values { await proxy.stop() }
            throw error
        }
    }

    private func stopAll(serving: Task<Void, any Error>) async {
        for name in running.withLock({ Array($0.keys) }) { await stopFollower(name) }
        serving.cancel()
        _ = await serving.result
        for proxy in proxies.values { await proxy.stop() }
    }

    /// The proxy between the leader and follower `name`.
    public func proxy(_ name: String) -> FaultInjectingProxy {
        guard let proxy = proxies[name] else { preconditionFailure("no follower named \(name) in this cluster") }
        return proxy
    }

    /// Follower `name` while it runs.
    public func follower(_ name: String) -> ReplicationFollower? {
        running.withLock { $0[name]?.follower }
    }

    /// The data directory of follower `name` (or of the leader, for "leader").
    public func dataDirectory(_ name: String) -> String {
        root + "/" + name
    }

    /// Starts (or restarts) follower `name` on its data directory, behind its proxy.
    ///
    /// Followers reconnect faster than by default (first delay 20 ms, at most 500 ms), then
    /// the cluster's `configureFollower` adjusts the configuration.
    ///
    /// - Parameter name: one of the names the cluster was started with.
    /// - Throws: `ReplicationError` from `ReplicationFollower.init(configuration:secret:logger:)`:
    ///   code `ReplicationError.Code.invalidConfiguration` or `ReplicationError.Code.storage`.
    public func startFollower(_ name: String) throws {
        guard let port = proxy(name).port else { preconditionFailure("the proxy of \(name) is not started") }
        var configuration = workspace.followerConfiguration(name, port: port)
        configuration.reconnectCap = .milliseconds(500)
        configureFollower(&configuration)
        let follower = try ReplicationFollower(configuration: configuration, secret: secret, logger: logger)
        let task = Task { try await follower.run() }
        running.withLock { $0[name] = Running(follower: follower, task: task) }
    }

    /// Stops follower `name` (as a crash would, between two group commits) and waits until it
    /// has stopped.
    public func stopFollower(_ name: String) async {
        guard let stopped = running.withLock({ $0.removeValue(forKey: name) }) else { return }
        stopped.task.cancel()
        _ = await stopped.task.result
    }

    /// Polls `condition` every 20 ms; throws ``Timeout`` naming `what` if it does not hold
    /// within `timeout`.
    ///
    /// - Parameters:
    ///   - what: the condition in words, for the ``Timeout``'s message.
    ///   - timeout: how long to poll (default 120 s).
    ///   - condition: true once the wait is over; checked once more at the deadline.
    /// - Throws: ``Timeout``; what `condition` throws; `CancellationError` when the task is
    ///   cancelled. No `ReplicationError` of its own.
    public func waitUntil(_ what: String, timeout: Duration = .seconds(120), _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        if try condition() { return }
        throw Timeout(description: "not within \(timeout): \(what); leader status \(leader.status())")
    }

    /// Waits until every running follower has made durable everything the leader wrote and
    /// holds exactly the leader's files.
    ///
    /// It flushes the leader first, so the last open batch reaches the followers.
    ///
    /// - Parameter timeout: how long to wait for the followers' durable LSNs (default 120 s).
    /// - Throws: ``Timeout`` when a follower does not reach the leader's last LSN in time, or
    ///   reaches it with files that differ; Foundation's error when a file cannot be read;
    ///   `CancellationError` when the task is cancelled. No `ReplicationError` of its own.
    public func waitForConvergence(timeout: Duration = .seconds(120)) async throws {
        leader.flush()
        let last = leader.lastLSN
        let names = running.withLock { Array($0.keys) }.sorted()
        try await waitUntil("followers \(names) hold LSN \(last)", timeout: timeout) {
            names.allSatisfy { name in (follower(name)?.status().lastDurableLSN ?? 0) >= last }
        }
        for name in names {
            let differences = try differingFiles(name)
            if !differences.isEmpty {
                throw Timeout(description: "\(name) holds LSN \(last) but differs from the leader in \(differences.prefix(10))")
            }
        }
    }

    /// Paths whose bytes differ between the leader and follower `name` (or exist on one only).
    ///
    /// - Parameter name: the follower to compare with the leader.
    /// - Returns: the differing paths relative to the data directories, sorted.
    /// - Throws: Foundation's error when a file cannot be read; no `ReplicationError`.
    public func differingFiles(_ name: String) throws -> [String] {
        let expected = try Self.files(under: dataDirectory("leader"))
        let actual = try Self.files(under: dataDirectory(name))
        return Set(expected.keys).union(actual.keys).filter { expected[$0] != actual[$0] }.sorted()
    }

    /// Every regular file below `directory` except the module's own `.brpl`, with its bytes.
    ///
    /// - Parameter directory: the directory to read; a missing one gives no files.
    /// - Returns: each file's bytes, keyed by its path relative to `directory`.
    /// - Throws: Foundation's error when a file cannot be read; no `ReplicationError`.
    public static func files(under directory: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return result }
        while let relative = enumerator.nextObject() as? String {
            if relative == ".brpl" || relative.hasPrefix(".brpl/") { continue }
            var isDirectory: ObjCBool = false
            let path = directory + "/" + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
        return result
    }
}
