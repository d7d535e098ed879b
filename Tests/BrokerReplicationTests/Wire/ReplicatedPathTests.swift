import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Replicated paths")
struct ReplicatedPathTests {
    @Test(arguments: [
        "a", "segment.0001", "queues/orders/segment.0001", "a/b/c/d/e", "..a", "a..", "a/.hidden", "köer/ä", "a b/c", "x/.brpl", ".brpl2",
        String(repeating: "x", count: 255),
    ])
    func acceptsRelativeNormalisedPaths(path: String) throws {
        #expect(try ReplicatedPath(path).string == path)
    }

    @Test(arguments: [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../escape", "\"..\""),
        ("a/../../b", "\"..\""),
        ("a/..", "\"..\""),
        ("..", "\"..\""),
        ("a//b", "empty component"),
        ("a/", "empty component"),
        ("./a", "\".\""),
        ("a/./b", "\".\""),
        ("a\u{0}b", "NUL"),
        (".brpl/state", "reserved"),
        (".brpl", "reserved"),
        (String(repeating: "x", count: 256), "component of 256 bytes"),
        (String(repeating: "abcdefg/", count: 600), "above the limit of 4096 bytes"),
    ])
    func refusesPathsThatCouldEscapeOrAreNotNormalised(path: String, reason: String) {
        let error = #expect(throws: ReplicationError.self) { try ReplicatedPath(path) }
        #expect(error?.code == .invalidPath)
        #expect(error?.description.contains(reason) == true, "\(String(describing: error)) should mention \(reason)")
    }

    @Test func pathsCompareByBytesLikeTheFileSystem() throws {
        let composed = try ReplicatedPath("caf\u{E9}")
        let decomposed = try ReplicatedPath("cafe\u{301}")
        #expect(composed.string == decomposed.string, "Swift calls the strings equal")
        #expect(composed != decomposed, "Linux stores them as two files")
        #expect(Set([composed, decomposed]).count == 2)
    }

    @Test func limitIsConfigurable() {
        #expect(throws: ReplicationError.self) { try ReplicatedPath("abcdef", maximumBytes: 5) }
        #expect(throws: Never.self) { try ReplicatedPath("abcde", maximumBytes: 5) }
    }
}
