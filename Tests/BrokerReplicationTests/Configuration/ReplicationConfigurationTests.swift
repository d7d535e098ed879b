import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Replication configuration")
struct ReplicationConfigurationTests {
    func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-config-\(UUID()).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func defaultsWithoutAFile() async throws {
        let defaults = try await ReplicationConfiguration.load(file: nil, environment: [:])
        #expect(defaults == ReplicationConfiguration())
    }

    @Test func aFileSetsWhatItNamesAndAppliesToTheLeader() async throws {
        let path = try file(#"{"policy": "minInSyncReplicas", "minInSyncReplicas": 2, "producerTimeoutSeconds": 12.5, "queueBytes": 8388608}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try await ReplicationConfiguration.load(file: path, environment: [:])
        var leader = ReplicationLeaderConfiguration(dataDirectory: "/tmp/x", clusterID: "c", nodeID: "n")
        configuration.apply(to: &leader)
        #expect(leader.policy == .minInSyncReplicas(2))
        #expect(leader.producerTimeout == .milliseconds(12500))
        #expect(leader.queueBytes == 8 * 1024 * 1024)
        #expect(leader.ackTimeout == .seconds(3), "unnamed keys keep their defaults")
        try leader.validate()
    }

    @Test func theCatchUpRateComesFromTheFileOrTheEnvironmentAndIsUnlimitedWithout() async throws {
        var leader = ReplicationLeaderConfiguration(dataDirectory: "/tmp/x", clusterID: "c", nodeID: "n")
        try await ReplicationConfiguration.load(file: nil, environment: [:]).apply(to: &leader)
        #expect(leader.catchUpBytesPerSecond == nil)
        let path = try file(#"{"catchUpBytesPerSecond": 52428800}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await ReplicationConfiguration.load(file: path, environment: [:]).apply(to: &leader)
        #expect(leader.catchUpBytesPerSecond == 50 << 20)
        try await ReplicationConfiguration.load(file: path, environment: ["BRPL_CATCH_UP_BYTES_PER_SECOND": "2000000"]).apply(to: &leader)
        #expect(leader.catchUpBytesPerSecond == 2_000_000)
        try leader.validate()
    }

    @Test func theOpenFileBoundAppliesToTheLeaderAndTheFollower() async throws {
        let path = try file(#"{"maximumOpenFiles": 4096}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try await ReplicationConfiguration.load(file: path, environment: ["BRPL_MAXIMUM_OPEN_FILES": "1024"])
        var leader = ReplicationLeaderConfiguration(dataDirectory: "/tmp/x", clusterID: "c", nodeID: "n")
        var follower = ReplicationFollowerConfiguration(dataDirectory: "/tmp/y", leaderHost: "127.0.0.1", leaderPort: 1, clusterID: "c", nodeID: "f")
        configuration.apply(to: &leader)
        configuration.apply(to: &follower)
        #expect(leader.maximumOpenFiles == 1024)
        #expect(follower.maximumOpenFiles == 1024)
        follower.maximumOpenFiles = 0
        #expect(throws: ReplicationError.self) { try follower.validate() }
    }

    @Test func theEnvironmentOverridesTheFile() async throws {
        let path = try file(#"{"policy": "minInSyncReplicas", "ackTimeoutSeconds": 9}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try await ReplicationConfiguration.load(
            file: path, environment: ["BRPL_POLICY": "evictSlowFollowers", "BRPL_ACK_TIMEOUT_SECONDS": "1.5", "BRPL_DURABILITY": "none"]
        )
        #expect(configuration.policy == .evictSlowFollowers)
        #expect(configuration.ackTimeoutSeconds == 1.5)
        var follower = ReplicationFollowerConfiguration(dataDirectory: "/tmp/x", leaderHost: "127.0.0.1", leaderPort: 1, clusterID: "c", nodeID: "n")
        configuration.apply(to: &follower)
        #expect(follower.durability == .none)
        #expect(ReplicationConfiguration.environmentName(for: "maxLagTimeSeconds") == "BRPL_MAX_LAG_TIME_SECONDS")
    }

    static let badValues: [(json: String?, environment: [String: String], message: String)] = [
        (#"{"queueBytes": "lots"}"#, [:], "queueBytes: must be a whole number of bytes"),
        (#"{"queueBytes": -1}"#, [:], "queueBytes: must be positive, got -1"),
        (#"{"policy": "waitForEveryone"}"#, [:], #"policy: must be "evictSlowFollowers" or "minInSyncReplicas", got "waitForEveryone""#),
        (#"{"minInSyncReplicas": 0}"#, [:], "minInSyncReplicas: must be at least 1, got 0"),
        (#"{"durability": "sometimes"}"#, [:], #"durability: must be "fsync" or "none", got "sometimes""#),
        (#"{"ackTimeoutSeconds": 0}"#, [:], "ackTimeoutSeconds: must be a positive number of seconds, got 0.0"),
        (#"{"queueSize": 5}"#, [:], "queueSize: unknown key; known keys: policy, minInSyncReplicas"),
        (#"{"queueBytes": 1.5}"#, [:], "queueBytes: must be a whole number of bytes"),
        (#"{"tlsCertificateFile": 7}"#, [:], "tlsCertificateFile: must be a string"),
        (nil, ["BRPL_TLS_REQUIRE_CLIENT_CERTIFICATE": "maybe"], #"tlsRequireClientCertificate: must be true or false, got "maybe""#),
        (nil, ["BRPL_QUEUE_BYTES": "12MB"], #"queueBytes: must be a whole number of bytes, got "12MB""#),
        (#"{"catchUpBytesPerSecond": 1000}"#, [:], "catchUpBytesPerSecond: must be at least 65536 (64 KiB/s), or absent for unlimited, got 1000"),
        (nil, ["BRPL_CATCH_UP_BYTES_PER_SECOND": "2MB"], #"catchUpBytesPerSecond: must be a whole number of bytes per second, got "2MB""#),
        (#"{"maximumOpenFiles": 0}"#, [:], "maximumOpenFiles: must be positive, got 0"),
        (nil, ["BRPL_PRODUCER_TIMEOUT_SECONDS": "soon"], #"producerTimeoutSeconds: must be a number of seconds, got "soon""#),
    ]

    @Test(arguments: badValues)
    func aBadValueNamesTheKey(json: String?, environment: [String: String], message: String) async throws {
        let path = try json.map { try file($0) }
        defer { if let path { try? FileManager.default.removeItem(atPath: path) } }
        let error = await #expect(throws: ReplicationError.self) { try await ReplicationConfiguration.load(file: path, environment: environment) }
        #expect(error?.message.contains(message) == true, "\(String(describing: error?.message))")
    }

    @Test func aMissingFileIsNamed() async {
        let error = await #expect(throws: ReplicationError.self) { try await ReplicationConfiguration.load(file: "/nonexistent/brpl.json", environment: [:]) }
        #expect(error?.message == #"cannot read the configuration file "/nonexistent/brpl.json""#)
    }

    @Test func valuesThatOnlyTheLeaderCanJudgeAreNamedToo() throws {
        var leader = ReplicationLeaderConfiguration(dataDirectory: "/tmp/x", clusterID: "c", nodeID: "n")
        var configuration = ReplicationConfiguration()
        configuration.queueBytes = 1000
        configuration.apply(to: &leader)
        let error = #expect(throws: ReplicationError.self) { try leader.validate() }
        #expect(error?.message.hasPrefix("queueBytes:") == true)
    }

    @Test func theResourceBoundsDefaultAndRefuseZero() throws {
        var leader = ReplicationLeaderConfiguration(dataDirectory: "/tmp/x", clusterID: "c", nodeID: "n")
        #expect(leader.maximumHandshakingConnections == 64 && leader.maximumOpenFiles == 256)
        try leader.validate()
        leader.maximumHandshakingConnections = 0
        #expect(throws: ReplicationError.invalidSetting("maximumHandshakingConnections", "must be at least 1")) { try leader.validate() }
        leader.maximumHandshakingConnections = 1
        leader.maximumOpenFiles = 0
        #expect(throws: ReplicationError.invalidSetting("maximumOpenFiles", "must be at least 1")) { try leader.validate() }
    }
}
