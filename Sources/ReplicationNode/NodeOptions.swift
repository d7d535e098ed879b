import ArgumentParser
import BrokerReplication

/// The command-line options the leader and the follower share. Every one is optional here:
/// a setting may come from the command line, a `BRPL_*` variable or the `--config` file, and
/// ``NodeSettings`` reads them all through one `ConfigReader`, the command line first.
struct NodeOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory this node replicates, created when missing (dataDir).")
    var dataDirectory: String?

    @Option(name: .customLong("secret-file"), help: "A file holding the cluster's shared secret: at least 16 bytes, one trailing newline ignored (secretFile; or the secret itself in BRPL_SECRET).")
    var secretFile: String?

    @Option(name: .customLong("cluster-id"), help: "The cluster's name; the leader and its followers must agree (clusterID, default \"default\").")
    var clusterID: String?

    @Option(name: .customLong("status-file"), help: "Write this node's status as JSON to this file every 200 ms, atomically through PATH.tmp (statusFile).")
    var statusFile: String?

    @Option(name: .customLong("config"), help: ArgumentHelp("A JSON file of settings (or BRPL_CONFIG): any key of Docs/Operations.md; the command line and BRPL_* variables override it.", valueName: "file"))
    var configFile: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Set a replication setting, as in the --config file (repeatable): --set queueBytes=33554432.", valueName: "key=value"))
    var settings: [String] = []

    @Option(name: .customLong("coordinator"), help: ArgumentHelp("The coordinator state file (JSON) holding the leader epoch and the in-sync set. The leader writes it (default <data-dir>/.brpl/coordinator.json); a follower reads it to check a promotion (coordinatorFile).", valueName: "file"))
    var coordinatorFile: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("TLS on the replication link: this node's PEM certificate chain (tlsCertificateFile).", valueName: "file"))
    var tlsCertificateFile: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The PEM private key of --tls-cert (tlsPrivateKeyFile).", valueName: "file"))
    var tlsPrivateKeyFile: String?

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("The PEM CA bundle the peer's certificate must chain to (tlsTrustedRootsFile).", valueName: "file"))
    var tlsTrustedRootsFile: String?

    @Flag(name: .customLong("tls-require-client-cert"), help: "Leader: require a follower certificate that names the follower's node id, mutual TLS (tlsRequireClientCertificate).")
    var tlsRequireClientCertificate = false

    @Option(name: .customLong("log-format"), help: "How log lines are written to stderr: text, or json, one object per line (logFormat, default text).")
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: "The lowest level logged: trace, debug, info, notice, warning, error or critical (logLevel, default info).")
    var logLevel: String?

    func validate() throws {
        _ = try commandLine()
    }

    /// The settings this command line gives, by key; `--set` may name only a replication
    /// setting, and no key twice.
    func commandLine() throws -> [String: String] {
        var values: [String: String] = [:]
        for pair in settings {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--set expects KEY=VALUE, got \(pair.debugDescription)")
            }
            let key = String(pair[..<equals])
            guard ReplicationConfiguration.keys.contains(key) else {
                throw ValidationError("--set \(key): unknown key; known keys: \(ReplicationConfiguration.keys.joined(separator: ", "))")
            }
            guard values[key] == nil else { throw ValidationError("--set \(key) is given twice") }
            values[key] = String(pair[pair.index(after: equals)...])
        }
        let flags: [(String, String, String?)] = [
            ("dataDir", "--data-dir", dataDirectory), ("secretFile", "--secret-file", secretFile), ("clusterID", "--cluster-id", clusterID),
            ("statusFile", "--status-file", statusFile), ("coordinatorFile", "--coordinator", coordinatorFile),
            ("tlsCertificateFile", "--tls-cert", tlsCertificateFile), ("tlsPrivateKeyFile", "--tls-key", tlsPrivateKeyFile),
            ("tlsTrustedRootsFile", "--tls-ca", tlsTrustedRootsFile), ("logFormat", "--log-format", logFormat), ("logLevel", "--log-level", logLevel),
            ("tlsRequireClientCertificate", "--tls-require-client-cert", tlsRequireClientCertificate ? "true" : nil),
        ]
        for (key, flag, value) in flags {
            guard let value else { continue }
            guard values[key] == nil else { throw ValidationError("\(flag) and --set \(key) both give \(key); give one") }
            values[key] = value
        }
        return values
    }
}
