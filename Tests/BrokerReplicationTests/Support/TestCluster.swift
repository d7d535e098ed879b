import Foundation
import Logging
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A leader and followers in temporary directories on loopback, for end-to-end tests.
final class TestCluster: Sendable {
    let root: String
    let secret = try! SharedSecret(bytes: Array("test cluster secret, 32 bytes!!!".utf8))
    let clusterID = "test-cluster"

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["BRPL_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }()

    func leaderConfiguration(_ name: String = "leader") -> ReplicationLeaderConfiguration {
        var configuration = ReplicationLeaderConfiguration(dataDirectory: root + "/" + name, clusterID: clusterID, nodeID: name)
        configuration.host = "127.0.0.1"
        configuration.port = 0
        return configuration
    }

    func followerConfiguration(_ name: String, port: Int) -> ReplicationFollowerConfiguration {
        var configuration = ReplicationFollowerConfiguration(dataDirectory: root + "/" + name, leaderHost: "127.0.0.1", leaderPort: port, clusterID: clusterID, nodeID: name)
        configuration.reconnectBase = .milliseconds(20)
        configuration.reconnectCap = .milliseconds(200)
        return configuration
    }

    /// Every regular file below `directory` (except `.brpl`) with its bytes.
    static func contents(of directory: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return result }
        while let relative = enumerator.nextObject() as? String {
            if relative == ".brpl" || relative.hasPrefix(".brpl/") { continue }
            var isDirectory: ObjCBool = false
            let full = directory + "/" + relative
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[relative] = try Data(contentsOf: URL(fileURLWithPath: full))
            }
        }
        return result
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    static func eventually(timeout: Duration = .seconds(60), _ condition: () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try condition()
    }
}
