import ArgumentParser
import BrokerReplication
import Foundation
import Logging
import Testing

@testable import ReplicationNode

/// Every `replication-node` setting is read through one `ConfigReader`: the command line over
/// `BRPL_*` variables over the `--config` file, key by key.
@Suite("Node settings")
struct NodeSettingsTests {
    /// A directory with a secret file and a settings file, removed by `remove()`.
    struct Files {
        let root: String

        init(json: String) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("node-settings-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try Data("node-settings-shared-secret-0123456789\n".utf8).write(to: URL(fileURLWithPath: root + "/secret"))
            try Data(json.utf8).write(to: URL(fileURLWithPath: config))
        }

        var config: String { root + "/settings.json" }
        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    /// Parses a leader's command line as `replication-node leader` does, then reads its settings.
    static func leaderSettings(_ arguments: [String], environment: [String: String]) async throws -> NodeSettings {
        let command = try LeaderCommand.parse(arguments)
        var commandLine = try command.node.commandLine()
        commandLine["listen"] = command.listen
        commandLine["nodeID"] = command.nodeID
        commandLine["metrics"] = command.metricsOptions.address
        return try await NodeSettings.read(commandLine: commandLine, configFile: command.node.configFile, role: .leader, environment: environment)
    }

    /// One key as each source spells it, with the value each source gives and how to read it back.
    struct Case: Sendable, CustomTestStringConvertible {
        let key: String
        let file: String
        let environment: (name: String, value: String)
        let flag: [String]
        let read: @Sendable (NodeSettings) -> String
        let expected: (file: String, environment: String, flag: String)
        var testDescription: String { key }
    }

    static let cases: [Case] = [
        Case(key: "dataDir", file: #""dataDir": "/from-file""#, environment: ("BRPL_DATA_DIR", "/from-env"), flag: ["--data-dir", "/from-flag"],
             read: { $0.dataDirectory }, expected: ("/from-file", "/from-env", "/from-flag")),
        Case(key: "listen", file: #""listen": "127.0.0.1:7001""#, environment: ("BRPL_LISTEN", "127.0.0.1:7002"), flag: ["--listen", "127.0.0.1:7003"],
             read: { "\($0.address)" }, expected: ("127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003")),
        Case(key: "nodeID", file: #""nodeID": "file-node""#, environment: ("BRPL_NODE_ID", "env-node"), flag: ["--node-id", "flag-node"],
             read: { $0.nodeID ?? "" }, expected: ("file-node", "env-node", "flag-node")),
        Case(key: "clusterID", file: #""clusterID": "file-cluster""#, environment: ("BRPL_CLUSTER_ID", "env-cluster"), flag: ["--cluster-id", "flag-cluster"],
             read: { $0.clusterID }, expected: ("file-cluster", "env-cluster", "flag-cluster")),
        Case(key: "logLevel", file: #""logLevel": "debug""#, environment: ("BRPL_LOG_LEVEL", "warning"), flag: ["--log-level", "error"],
             read: { $0.logLevel.rawValue }, expected: ("debug", "warning", "error")),
        Case(key: "metrics", file: #""metrics": "127.0.0.1:9001""#, environment: ("BRPL_METRICS", "127.0.0.1:9002"), flag: ["--metrics", "127.0.0.1:9003"],
             read: { $0.metrics.map { "\($0)" } ?? "" }, expected: ("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003")),
        Case(key: "queueBytes", file: #""queueBytes": 1048576"#, environment: ("BRPL_QUEUE_BYTES", "2097152"), flag: ["--set", "queueBytes=3145728"],
             read: { "\($0.replication.queueBytes)" }, expected: ("1048576", "2097152", "3145728")),
        Case(key: "ackTimeoutSeconds", file: #""ackTimeoutSeconds": 2"#, environment: ("BRPL_ACK_TIMEOUT_SECONDS", "1.5"), flag: ["--set", "ackTimeoutSeconds=0.75"],
             read: { "\($0.replication.ackTimeoutSeconds)" }, expected: ("2.0", "1.5", "0.75")),
        Case(key: "statusFile", file: #""statusFile": "/file.json""#, environment: ("BRPL_STATUS_FILE", "/env.json"), flag: ["--status-file", "/flag.json"],
             read: { $0.statusFile ?? "" }, expected: ("/file.json", "/env.json", "/flag.json")),
        Case(key: "tlsTrustedRootsFile", file: #""tlsTrustedRootsFile": "/file.pem""#, environment: ("BRPL_TLS_TRUSTED_ROOTS_FILE", "/env.pem"),
             flag: ["--tls-ca", "/flag.pem"], read: { $0.replication.tlsTrustedRootsFile ?? "" }, expected: ("/file.pem", "/env.pem", "/flag.pem")),
    ]

    @Test(arguments: cases)
    func theCommandLineBeatsTheEnvironmentWhichBeatsTheFile(_ setting: Case) async throws {
        let files = try Files(json: "{\(setting.file)}")
        defer { files.remove() }
        // Everything else a leader needs, from the command line, so only `setting.key` varies.
        var base = ["--config", files.config, "--secret-file", files.root + "/secret"]
        if setting.key != "dataDir" { base += ["--data-dir", files.root + "/data"] }
        if setting.key != "listen" { base += ["--listen", "127.0.0.1:0"] }
        let environment = [setting.environment.name: setting.environment.value]

        let fromFile = try await Self.leaderSettings(base, environment: [:])
        #expect(setting.read(fromFile) == setting.expected.file)
        let fromEnvironment = try await Self.leaderSettings(base, environment: environment)
        #expect(setting.read(fromEnvironment) == setting.expected.environment)
        let fromFlag = try await Self.leaderSettings(base + setting.flag, environment: environment)
        #expect(setting.read(fromFlag) == setting.expected.flag)
    }

    @Test func aNodeRunsFromTheEnvironmentAndTheFileAlone() async throws {
        let files = try Files(json: #"{"listen": "127.0.0.1:0", "policy": "minInSyncReplicas", "minInSyncReplicas": 2, "logFormat": "json"}"#)
        defer { files.remove() }
        let settings = try await Self.leaderSettings([], environment: [
            "BRPL_CONFIG": files.config, "BRPL_DATA_DIR": files.root + "/data", "BRPL_SECRET": "a-secret-from-the-environment",
        ])
        #expect(settings.dataDirectory == files.root + "/data")
        #expect(settings.replication.replicationPolicy == .minInSyncReplicas(2))
        #expect(settings.logFormat == .json)
    }

    /// Each wrong setting is refused with the key, what is wrong, and where the value came from.
    @Test(arguments: [
        (#"{"listen": "127.0.0.1:0", "queueSize": 5}"#, [String: String](), ["queueSize: unknown key; known keys: ", "dataDir", "metrics", "queueBytes"]),
        (#"{"listen": "127.0.0.1:0"}"#, ["BRPL_QUEUE_BYTES": "lots"], [#"BRPL_QUEUE_BYTES: queueBytes: must be a whole number of bytes, got "lots""#]),
        (#"{"listen": "127.0.0.1:0", "queueBytes": true}"#, [:], [#"settings.json: queueBytes: must not be true or false"#]),
        (#"{"listen": "127.0.0.1"}"#, [:], ["settings.json: listen: expects HOST:PORT", "no port"]),
        (#"{"listen": "127.0.0.1:0", "logLevel": "loud"}"#, [:], [#"logLevel: must be one of trace, debug, info"#, #"got "loud""#]),
        (#"{"listen": "127.0.0.1:0", "secretFile": "/s"}"#, ["BRPL_SECRET": "a-secret-from-the-environment"], ["give secretFile or secret, not both"]),
        (#"{"listen": "127.0.0.1:0", "ackTimeoutSeconds": 20}"#, [:], ["ackTimeoutSeconds", "producerTimeoutSeconds"]),
    ])
    func aWrongSettingIsRefusedNamingItsKeyAndSource(json: String, environment: [String: String], fragments: [String]) async throws {
        let files = try Files(json: json)
        defer { files.remove() }
        var environment = environment
        environment["BRPL_DATA_DIR"] = files.root + "/data"
        if environment["BRPL_SECRET"] == nil { environment["BRPL_SECRET_FILE"] = files.root + "/secret" }
        do {
            _ = try await Self.leaderSettings(["--config", files.config], environment: environment)
            Issue.record("accepted \(json) with \(environment)")
        } catch {
            let message = "\(error)"
            for fragment in fragments { #expect(message.contains(fragment), "\(message)") }
        }
    }

    @Test(arguments: [
        (["--set", "policy=sometimes"], #"--set policy: policy: must be "evictSlowFollowers" or "minInSyncReplicas", got "sometimes""#),
        (["--secret-file", "/no/such/secret"], #"--secret-file: secretFile: cannot read the secret file "/no/such/secret""#),
        (["--metrics", "127.0.0.1"], "--metrics: metrics: expects HOST:PORT"),
    ])
    func aWrongCommandLineValueNamesItsOption(arguments: [String], message: String) async throws {
        let files = try Files(json: "{}")
        defer { files.remove() }
        await #expect {
            try await Self.leaderSettings(["--data-dir", files.root + "/data", "--listen", "127.0.0.1:0"] + arguments, environment: [
                "BRPL_SECRET_FILE": files.root + "/secret",
            ])
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func aMissingDataDirectorySaysWhereToSetIt() async throws {
        let files = try Files(json: #"{"listen": "127.0.0.1:0"}"#)
        defer { files.remove() }
        await #expect {
            try await Self.leaderSettings(["--config", files.config, "--secret-file", files.root + "/secret"], environment: [:])
        } throws: { error in
            "\(error)".contains(#"dataDir: missing; give --data-dir, BRPL_DATA_DIR or "dataDir" in the --config file"#)
        }
    }

    @Test(arguments: [
        (["--set", "queueSize=5"], "--set queueSize: unknown key; known keys: policy"),
        (["--set", "queueBytes"], #"--set expects KEY=VALUE, got "queueBytes""#),
        (["--set", "queueBytes=1", "--set", "queueBytes=2"], "--set queueBytes is given twice"),
        (["--tls-ca", "/a.pem", "--set", "tlsTrustedRootsFile=/b.pem"], "--tls-ca and --set tlsTrustedRootsFile both give tlsTrustedRootsFile"),
    ])
    func aWrongSetIsRefusedOnTheCommandLine(arguments: [String], message: String) {
        #expect {
            _ = try LeaderCommand.parse(arguments)
        } throws: { error in
            LeaderCommand.message(for: error).contains(message)
        }
    }
}
