import ArgumentParser
import BrokerReplication
import Logging

/// The options the leader and the follower share.
struct NodeOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory this node replicates (created when missing).")
    var dataDirectory: String

    @Option(name: .customLong("secret-file"), help: "A file holding the cluster's shared secret (at least 16 bytes; one trailing newline is ignored).")
    var secretFile: String

    @Option(name: .customLong("cluster-id"), help: "The cluster's name; the leader and its followers must agree.")
    var clusterID: String = "default"

    @Option(name: .customLong("status-file"), help: "Write this node's status as JSON to this file every 200 ms (atomically, through PATH.tmp).")
    var statusFile: String?

    @Option(name: .customLong("config"), help: ArgumentHelp("Replication settings as JSON (see Docs/Operations.md); BRPL_* environment variables override them.", valueName: "file"))
    var configFile: String?

    @Option(name: .customLong("coordinator"), help: ArgumentHelp("The coordinator state file (JSON) holding the leader epoch and the in-sync set. The leader writes it (default <data-dir>/.brpl/coordinator.json); a follower reads it to check a promotion.", valueName: "file"))
    var coordinatorFile: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("TLS on the replication link: this node's PEM certificate chain (overrides tlsCertificateFile).", valueName: "file"))
    var tlsCertificateFile: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The PEM private key of --tls-cert (overrides tlsPrivateKeyFile).", valueName: "file"))
    var tlsPrivateKeyFile: String?

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("The PEM CA bundle the peer's certificate must chain to (overrides tlsTrustedRootsFile).", valueName: "file"))
    var tlsTrustedRootsFile: String?

    @Flag(name: .customLong("tls-require-client-cert"), help: "Leader: require a follower certificate that names the follower's node id (mutual TLS).")
    var tlsRequireClientCertificate = false

    @Option(name: .customLong("log-format"), help: "How log lines are written to stderr: text, or json (one object per line).")
    var logFormat: LogFormat = .text

    @Option(name: .customLong("log-level"), help: "The lowest level logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        if let coordinatorFile, coordinatorFile.isEmpty { throw ValidationError("--coordinator must not be empty") }
        guard !dataDirectory.isEmpty else { throw ValidationError("--data-dir must not be empty") }
        guard (1...255).contains(clusterID.utf8.count) else { throw ValidationError("--cluster-id must be 1...255 bytes of UTF-8") }
        if let statusFile, statusFile.isEmpty { throw ValidationError("--status-file must not be empty") }
        _ = try loadSecret()
        _ = try loadConfiguration()
    }

    /// The replication settings from `--config` and the environment, then the `--tls-*` options; a ``ValidationError``
    /// naming the key when a value is wrong.
    func loadConfiguration() throws -> ReplicationConfiguration {
        do {
            var configuration = try ReplicationConfiguration.load(file: configFile)
            try configuration.overrideTLS(
                certificateFile: tlsCertificateFile, privateKeyFile: tlsPrivateKeyFile, trustedRootsFile: tlsTrustedRootsFile,
                requireClientCertificate: tlsRequireClientCertificate
            )
            return configuration
        } catch {
            throw ValidationError("--config: \(error.message)")
        }
    }

    /// The shared secret; a ``ValidationError`` naming `--secret-file` when it cannot be used.
    func loadSecret() throws -> SharedSecret {
        do {
            return try SharedSecret(contentsOfFile: secretFile)
        } catch {
            throw ValidationError("--secret-file: \(error.message)")
        }
    }
}

/// Checks a `--node-id` value the way the library will.
func validateNodeID(_ nodeID: String?) throws {
    if let nodeID, !(1...255).contains(nodeID.utf8.count) {
        throw ValidationError("--node-id must be 1...255 bytes of UTF-8")
    }
}
