import Logging
import Synchronization
import Testing

@testable import BrokerReplication

/// Keeps every log record, for asserting what was logged.
final class CapturingLogHandler: LogHandler, Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let records = Mutex<[Record]>([])
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        let flattened = (event.metadata ?? [:]).mapValues { "\($0)" }
        records.withLock { $0.append(Record(level: event.level, message: "\(event.message)", metadata: flattened)) }
    }
}

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
}
