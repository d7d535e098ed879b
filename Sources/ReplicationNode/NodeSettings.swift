import ArgumentParser
import BrokerReplication
import Configuration
import Foundation
import Logging
import Synchronization

/// Every setting of one `replication-node`, read through one `ConfigReader` whose providers
/// are, in order of precedence: the command line, `BRPL_*` environment variables, and the
/// JSON file that `--config` (or `BRPL_CONFIG`) names.
struct NodeSettings {
    enum Role { case leader, follower }

    /// The node's own keys; with ``ReplicationConfiguration/keys`` they are every key a file may hold.
    static let nodeKeys = [
        "dataDir", "secretFile", "secret", "clusterID", "nodeID", "listen", "leader", "statusFile", "coordinatorFile", "logFormat", "logLevel",
        "metrics",
    ]

    var dataDirectory: String
    var secret: SharedSecret
    var clusterID: String
    /// `--node-id`; nil: the leader's default `leader`, or the follower's stored id.
    var nodeID: String?
    /// The leader's `listen` address, or the follower's `leader` address.
    var address: HostPort
    /// Where to serve `GET /metrics` and `GET /health`; nil: nowhere.
    var metrics: HostPort?
    var statusFile: String?
    var coordinatorFile: String?
    var logFormat: LogFormat
    var logLevel: Logger.Level
    var replication: ReplicationConfiguration

    /// Reads and checks every setting.
    ///
    /// - Parameters:
    ///   - commandLine: the settings the command line gives, by key (``NodeOptions/commandLine()``
    ///     and the role's own options).
    ///   - configFile: `--config`; nil: `BRPL_CONFIG`, if set.
    ///   - role: which address key is required.
    ///   - environment: where `BRPL_*` variables come from.
    /// - Throws: a `ValidationError` that names the key, and where its value came from.
    static func read(
        commandLine: [String: String], configFile: String?, role: Role,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> NodeSettings {
        let origins = SettingOrigins(configFile: configFile ?? environment["BRPL_CONFIG"])
        var providers: [any ConfigProvider] = [
            InMemoryProvider(
                name: SettingOrigins.commandLine,
                values: Dictionary(uniqueKeysWithValues: commandLine.map { key, value in
                    (AbsoluteConfigKey([key]), ConfigValue(.string(value), isSecret: key == SettingSources.secretKey))
                })
            ),
            SettingSources.environment(environment),
        ]
        do {
            if let file = origins.configFile {
                providers.append(try await SettingSources.file(file, knownKeys: nodeKeys + ReplicationConfiguration.keys))
            }
        } catch {
            throw ValidationError(origins.explain(error.message))
        }
        return try parse(ConfigReader(providers: providers, accessReporter: origins), role: role, origins: origins)
    }

    private static func parse(_ reader: ConfigReader, role: Role, origins: SettingOrigins) throws(ValidationError) -> NodeSettings {
        do {
            return try NodeSettings(reading: SettingReader(reader: reader), replication: ReplicationConfiguration(reader: reader), role: role)
        } catch {
            throw ValidationError(origins.explain(error.message))
        }
    }

    private init(reading read: SettingReader, replication: ReplicationConfiguration, role: Role) throws(ReplicationError) {
        func required(_ key: String) throws(ReplicationError) -> String {
            guard let value = try read.string(key) else { throw .invalidConfiguration("\(key): missing; \(SettingOrigins.whereToSet(key))") }
            return value
        }
        func nonEmpty(_ key: String) throws(ReplicationError) -> String? {
            let value = try read.string(key)
            if value?.isEmpty == true { throw .invalidSetting(key, "must not be empty") }
            return value
        }
        dataDirectory = try required("dataDir")
        if dataDirectory.isEmpty { throw .invalidSetting("dataDir", "must not be empty") }
        switch (try read.string("secretFile"), try read.string(SettingSources.secretKey, isSecret: true)) {
        case (let file?, nil):
            do {
                secret = try SharedSecret(contentsOfFile: file)
            } catch {
                throw .invalidSetting("secretFile", error.message)
            }
        case (nil, let text?): secret = try SharedSecret(bytes: Array(text.utf8))
        case (nil, nil): throw .invalidConfiguration("secretFile: missing; \(SettingOrigins.whereToSet("secretFile")), or the secret itself in BRPL_SECRET")
        case (_?, _?): throw .invalidConfiguration("secret: give secretFile or secret, not both")
        }
        clusterID = try read.string("clusterID") ?? "default"
        nodeID = try read.string("nodeID")
        try ReplicationError.checkIdentifiers(clusterID: clusterID, nodeID: nodeID ?? "leader")
        let addressKey = role == .leader ? "listen" : "leader"
        func hostPort(_ key: String, _ text: String, ports: ClosedRange<Int>) throws(ReplicationError) -> HostPort {
            do {
                return try HostPort(parsing: text, flag: key, ports: ports)
            } catch {
                throw .invalidConfiguration("\(error)")
            }
        }
        address = try hostPort(addressKey, try required(addressKey), ports: role == .leader ? 0...65535 : 1...65535)
        metrics = try read.string("metrics").map { text throws(ReplicationError) in try hostPort("metrics", text, ports: 0...65535) }
        statusFile = try nonEmpty("statusFile")
        coordinatorFile = try nonEmpty("coordinatorFile")
        let format = try read.string("logFormat") ?? "text"
        guard let logFormat = LogFormat(rawValue: format) else { throw .invalidSetting("logFormat", "must be text or json, got \(format.debugDescription)") }
        self.logFormat = logFormat
        let level = try read.string("logLevel") ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw .invalidSetting("logLevel", "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \(level.debugDescription)")
        }
        self.logLevel = logLevel
        self.replication = replication
    }
}

/// Remembers which source gave each key, so that an error says where to fix a value: the
/// command line, a `BRPL_*` variable, or the `--config` file.
final class SettingOrigins: AccessReporter {
    static let commandLine = "command line"
    let configFile: String?
    private let origins = Mutex<[String: String]>([:])

    init(configFile: String?) { self.configFile = configFile }

    func report(_ event: AccessEvent) {
        // The providers are asked in order; the last one asked gave the value or failed on it.
        guard let last = event.providerResults.last else { return }
        if case .success(let lookup) = last.result, lookup.value == nil { return }
        let key = event.metadata.key.components.joined(separator: ".")
        let origin: String
        if last.providerName.contains(Self.commandLine) {
            origin = Self.flags[key] ?? "--set \(key)"
        } else if last.providerName.contains("Environment") {
            origin = ReplicationConfiguration.environmentName(for: key)
        } else {
            origin = configFile.map { "--config \($0)" } ?? "the configuration file"
        }
        origins.withLock { $0[key] = origin }
    }

    /// `message` (`key: what is wrong`) with the source of that key's value.
    func explain(_ message: String) -> String {
        let key = String(message.prefix { $0 != ":" })
        guard let origin = origins.withLock({ $0[key] }) else { return message }
        return "\(origin): \(message)"
    }

    /// The command-line option of each key that has its own; the others are `--set KEY=VALUE`.
    static let flags = [
        "dataDir": "--data-dir", "secretFile": "--secret-file", "clusterID": "--cluster-id", "nodeID": "--node-id", "listen": "--listen",
        "leader": "--leader", "statusFile": "--status-file", "coordinatorFile": "--coordinator", "logFormat": "--log-format",
        "logLevel": "--log-level", "metrics": "--metrics", "tlsCertificateFile": "--tls-cert", "tlsPrivateKeyFile": "--tls-key",
        "tlsTrustedRootsFile": "--tls-ca", "tlsRequireClientCertificate": "--tls-require-client-cert",
    ]

    /// Where an operator may set `key`, for a missing required setting.
    static func whereToSet(_ key: String) -> String {
        return "give \(flags[key].map { "\($0), " } ?? "")\(ReplicationConfiguration.environmentName(for: key)) or \"\(key)\" in the --config file"
    }
}
