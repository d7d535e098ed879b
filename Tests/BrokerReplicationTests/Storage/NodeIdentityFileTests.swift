import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// `ReplicationFollowerConfiguration.storedNodeID(dataDirectory:)`: created once, read back
/// after, and a file that holds no id is refused with its name, never replaced.
@Suite("Stored node id")
struct NodeIdentityFileTests {
    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("node-id-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func theFirstCallStoresANewIdAndLaterCallsReturnIt() throws {
        let root = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let first = try ReplicationFollowerConfiguration.storedNodeID(dataDirectory: root + "/data")
        #expect(first.wholeMatch(of: /follower-[0-9a-f]{12}/) != nil, "\(first)")
        #expect(try String(contentsOfFile: root + "/data/.brpl/node-id", encoding: .utf8) == first + "\n")
        #expect(try ReplicationFollowerConfiguration.storedNodeID(dataDirectory: root + "/data") == first)
        let other = try ReplicationFollowerConfiguration.storedNodeID(dataDirectory: root + "/other")
        #expect(other != first, "each data directory gets its own id")
    }

    @Test(arguments: [
        ("", "empty"),
        (String(repeating: "x", count: 256), "256 bytes"),
        ("two\nlines", "two lines"),
    ])
    func aFileThatHoldsNoIdIsRefusedWithItsName(content: String, _ what: String) throws {
        let root = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/.brpl", withIntermediateDirectories: true)
        try Data(content.utf8).write(to: URL(fileURLWithPath: root + "/.brpl/node-id"))
        let error = #expect(throws: ReplicationError.self, "\(what)") { try ReplicationFollowerConfiguration.storedNodeID(dataDirectory: root) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains(root + "/.brpl/node-id does not hold a node id") == true, "\(error?.message ?? "")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/.brpl/node-id")) == Data(content.utf8), "left as it was")
    }

    @Test func notUTF8IsRefused() throws {
        #expect(NodeIdentityFile.nodeID(in: [0xFF, 0xFE, 0x0A]) == nil)
        #expect(NodeIdentityFile.nodeID(in: Array("f1\r\n".utf8)) == "f1")
    }
}
