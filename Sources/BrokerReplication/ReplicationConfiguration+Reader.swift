import Configuration
import Foundation
import SystemPackage

extension ReplicationConfiguration {
    /// Reads every key through `reader`, keeping the default of each key it does not hold, then
    /// validates.
    ///
    /// A broker that reads its own settings with swift-configuration passes its reader, scoped
    /// to wherever it keeps these keys; the keys are spelled as in ``keys``. Precedence between
    /// sources is the reader's: its first provider that holds a key wins.
    ///
    /// A value may be typed (a JSON number or `true`) or a string that parses (a command line's
    /// or an environment variable's `"1.5"`).
    ///
    /// - Parameter reader: the configuration to read.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   naming the key when a value is of the wrong type or spelling, or when ``validate()``
    ///   refuses it.
    public init(reader: ConfigReader) throws(ReplicationError) {
        self.init()
        let read = SettingReader(reader: reader)
        if let v = try read.string("policy") { policy = try Policy.named(v) }
        if let v = try read.int("minInSyncReplicas", "must be a whole number of followers") { minInSyncReplicas = v }
        if let v = try read.int("queueBytes", "must be a whole number of bytes") { queueBytes = v }
        if let v = try read.int("queueFrames", "must be a whole number of frames") { queueFrames = v }
        if let v = try read.int("backlogBytes", "must be a whole number of bytes") { backlogBytes = v }
        if let v = try read.int("maximumOpenFiles", "must be a whole number of files") { maximumOpenFiles = v }
        if let v = try read.int("catchUpBytesPerSecond", "must be a whole number of bytes per second") { catchUpBytesPerSecond = v }
        if let v = try read.seconds("ackTimeoutSeconds") { ackTimeoutSeconds = v }
        if let v = try read.seconds("heartbeatIntervalSeconds") { heartbeatIntervalSeconds = v }
        if let v = try read.seconds("heartbeatTimeoutSeconds") { heartbeatTimeoutSeconds = v }
        if let v = try read.seconds("maxLagTimeSeconds") { maxLagTimeSeconds = v }
        if let v = try read.seconds("producerTimeoutSeconds") { producerTimeoutSeconds = v }
        if let v = try read.string("durability") { durability = try Self.durability(named: v) }
        if let v = try read.int("batchBytes", "must be a whole number of bytes") { batchBytes = v }
        if let v = try read.seconds("flushIntervalSeconds") { flushIntervalSeconds = v }
        if let v = try read.seconds("connectTimeoutSeconds") { connectTimeoutSeconds = v }
        if let v = try read.seconds("reconnectBaseSeconds") { reconnectBaseSeconds = v }
        if let v = try read.seconds("reconnectCapSeconds") { reconnectCapSeconds = v }
        if let v = try read.string("tlsCertificateFile") { tlsCertificateFile = v }
        if let v = try read.string("tlsPrivateKeyFile") { tlsPrivateKeyFile = v }
        if let v = try read.string("tlsTrustedRootsFile") { tlsTrustedRootsFile = v }
        if let v = try read.bool("tlsRequireClientCertificate") { tlsRequireClientCertificate = v }
        try validate()
    }

    /// Reads a JSON file and the `BRPL_*` variables of `environment` through one `ConfigReader`
    /// (a variable wins over the file), then validates.
    ///
    /// - Parameters:
    ///   - path: the JSON file; nil: start from the defaults and apply only the environment.
    ///   - environment: the variables to read `BRPL_*` overrides from (default: this process's
    ///     environment); see ``environmentName(for:)``.
    /// - Returns: the validated configuration.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   when the file cannot be read, is not a JSON object, or holds a key not in ``keys`` (the
    ///   message names the file and lists the known keys), when a value does not parse, or when
    ///   ``validate()`` refuses a value; the message names the key.
    public static func load(
        file path: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ReplicationError) -> ReplicationConfiguration {
        var providers: [any ConfigProvider] = [SettingSources.environment(environment)]
        if let path { providers.append(try await SettingSources.file(path, knownKeys: keys)) }
        return try ReplicationConfiguration(reader: ConfigReader(providers: providers))
    }

    /// The environment variable that overrides `key`: `BRPL_` and the key in upper snake
    /// case, a word starting at each capital after a small letter: `BRPL_QUEUE_BYTES` for
    /// `queueBytes`, `BRPL_NODE_ID` for `nodeID`.
    ///
    /// - Parameter key: a key as the file spells it, one of ``keys``.
    public static func environmentName(for key: String) -> String {
        var name = "BRPL_"
        var previous: Character?
        for character in key {
            if character.isUppercase, previous?.isLowercase == true { name += "_" }
            name += character.uppercased()
            previous = character
        }
        return name
    }

    /// The durability a file or environment value names.
    private static func durability(named text: String) throws(ReplicationError) -> ReplicationFollowerConfiguration.Durability {
        guard let durability = ReplicationFollowerConfiguration.Durability(rawValue: text) else {
            throw .invalidSetting("durability", "must be \"fsync\" or \"none\", got \(text.debugDescription)")
        }
        return durability
    }
}

/// The sources of a node's settings other than its command line: `BRPL_*` environment
/// variables and a JSON file, as swift-configuration providers.
package enum SettingSources {
    /// The key whose value is a secret wherever it comes from: the shared secret itself.
    package static let secretKey = "secret"

    /// `BRPL_` and the key in upper snake case, as ``ReplicationConfiguration/environmentName(for:)``
    /// spells it; `BRPL_SECRET` is marked secret.
    package static func environment(_ environment: [String: String]) -> some ConfigProvider {
        EnvironmentVariablesProvider(
            environmentVariables: environment,
            secretsSpecifier: .specific([ReplicationConfiguration.environmentName(for: secretKey)])
        ).prefixKeys(with: ConfigKey(["brpl"]))
    }

    /// A JSON file of settings, refused unless it is one object whose keys are all in `knownKeys`
    /// (a misspelt key must not pass silently as a default) and whose `true` and `false` are only
    /// for ``booleanKeys`` (swift-configuration would read `true` as the number 1).
    package static func file(_ path: String, knownKeys: [String]) async throws(ReplicationError) -> some ConfigProvider {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidConfiguration("cannot read the configuration file \(path.debugDescription)")
        }
        guard let object = try? JSONDecoder().decode([String: FileValue].self, from: data) else {
            throw .invalidConfiguration("\(path): not a JSON object of settings")
        }
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            guard knownKeys.contains(key) else {
                throw .invalidConfiguration("\(path): \(key): unknown key; known keys: \(knownKeys.joined(separator: ", "))")
            }
            if value == .boolean, !booleanKeys.contains(key) { throw .invalidConfiguration("\(path): \(key): must not be true or false") }
        }
        do {
            return try await FileProvider<JSONSnapshot>(
                parsingOptions: .init(secretsSpecifier: .specific([secretKey])), filePath: FilePath(path)
            )
        } catch {
            throw .invalidConfiguration("\(path): \(error)")
        }
    }
}

extension SettingSources {
    /// The keys whose value is `true` or `false`.
    package static let booleanKeys: Set<String> = ["tlsRequireClientCertificate"]

    /// What a file's value is, as far as the checks above need to know.
    private enum FileValue: Decodable, Equatable {
        case boolean, other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            self = (try? container.decode(Bool.self)) != nil ? .boolean : .other
        }
    }
}

/// Reads one key as a typed value, or as a string that parses to one, so that a command line's
/// and an environment's strings read like a file's numbers; a value present in any other form
/// is refused rather than skipped.
package struct SettingReader {
    package let reader: ConfigReader

    package init(reader: ConfigReader) { self.reader = reader }

    package func string(_ key: String, isSecret: Bool = false) throws(ReplicationError) -> String? {
        if let value = reader.string(forKey: ConfigKey([key]), isSecret: isSecret) { return value }
        if isPresent(key) { throw .invalidSetting(key, "must be a string") }
        return nil
    }

    package func int(_ key: String, _ rule: String) throws(ReplicationError) -> Int? {
        if let value = reader.int(forKey: ConfigKey([key])) { return value }
        return try parsed(key, rule) { Int($0) }
    }

    package func seconds(_ key: String) throws(ReplicationError) -> Double? {
        if let value = reader.double(forKey: ConfigKey([key])) { return value }
        return try parsed(key, "must be a number of seconds") { Double($0) }
    }

    package func bool(_ key: String) throws(ReplicationError) -> Bool? {
        if let value = reader.bool(forKey: ConfigKey([key])) { return value }
        return try parsed(key, "must be true or false") { Bool($0) }
    }

    private func parsed<Value>(_ key: String, _ rule: String, _ parse: (String) -> Value?) throws(ReplicationError) -> Value? {
        if let text = reader.string(forKey: ConfigKey([key])) {
            guard let value = parse(text) else { throw .invalidSetting(key, "\(rule), got \(text.debugDescription)") }
            return value
        }
        if isPresent(key) { throw .invalidSetting(key, rule) }
        return nil
    }

    /// Whether some source holds `key` in a form the typed lookups did not take.
    private func isPresent(_ key: String) -> Bool {
        let key = ConfigKey([key])
        return reader.string(forKey: key) != nil || reader.double(forKey: key) != nil || reader.bool(forKey: key) != nil
            || reader.int(forKey: key) != nil
    }
}
