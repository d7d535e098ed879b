import Logging
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Rate-limited warnings")
struct RateLimitedLogTests {
    @Test func aRepeatingWarningShowsOncePerIntervalWithTheCountHeldBack() async throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "test") { _ in handler }
        let log = RateLimitedLog(interval: .milliseconds(200))
        for _ in 0..<100 { log.log(logger, .warning, "connection to the leader ended", key: "ended") }
        log.log(logger, .warning, "another problem", key: "other")
        #expect(handler.records.withLock { $0.map(\.message) } == ["connection to the leader ended", "another problem"])
        try await Task.sleep(for: .milliseconds(250))
        log.log(logger, .warning, "connection to the leader ended", key: "ended")
        let last = try #require(handler.records.withLock { $0.last })
        #expect(last.message == "connection to the leader ended")
        #expect(last.metadata["suppressedSinceLast"] == "99")
    }

    /// Keys carry what peers send (a refused follower's cluster and node ids): 100,000
    /// distinct ones leave at most `maximumKeys` behind, and cost at most one line each until
    /// the table is full, then one line per interval for all the new ones together.
    @Test func aHundredThousandDistinctKeysStayWithinTheBoundAndARepeatedKeyIsStillLimited() throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "test") { _ in handler }
        let bound = 256
        let log = RateLimitedLog(interval: .seconds(600), maximumKeys: bound)
        log.log(logger, .warning, "repeated", key: "repeated")
        for index in 0..<100_000 {
            log.log(logger, .warning, "follower refused this leader", key: "refused by node-\(index)")
            if index % 1_000 == 0 { log.log(logger, .warning, "repeated", key: "repeated") }
        }
        let records = handler.records.withLock { $0 }
        print("rate-limited log: \(log.keyCount) keys and \(records.count) lines after 100,000 distinct keys (bound \(bound))")
        #expect(log.keyCount <= bound, "\(log.keyCount) keys kept")
        #expect(records.filter { $0.message == "repeated" }.count == 1, "the repeated key is still limited")
        #expect(records.count <= bound + 1, "\(records.count) lines for 100,000 distinct keys")
        // The line that stands for the keys beyond the bound says so.
        let shared = try #require(records.last)
        #expect(shared.metadata["rateLimitedKeysFull"] == "\(bound)", "\(shared.metadata)")
    }

    /// A key that has not fired for longer than the interval makes room: once the table is
    /// full of old keys, a new key is logged on its own again, and the count stays bounded.
    @Test func keysOlderThanTheIntervalMakeRoomForNewOnes() async throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "test") { _ in handler }
        let log = RateLimitedLog(interval: .milliseconds(100), maximumKeys: 16)
        for index in 0..<16 { log.log(logger, .warning, "old \(index)", key: "old \(index)") }
        log.log(logger, .warning, "held back", key: "beyond the bound")
        #expect(handler.records.withLock { $0.count } == 17)
        log.log(logger, .warning, "held back too", key: "beyond the bound, again")
        #expect(handler.records.withLock { $0.count } == 17, "a second new key within the interval shares the first one's line")
        try await Task.sleep(for: .milliseconds(150))
        log.log(logger, .warning, "new", key: "new")
        let last = try #require(handler.records.withLock { $0.last })
        #expect(last.message == "new")
        #expect(last.metadata["rateLimitedKeysFull"] == nil, "\(last.metadata)")
        #expect(log.keyCount <= 16)
    }
}
