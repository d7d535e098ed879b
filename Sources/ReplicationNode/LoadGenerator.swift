import ArgumentParser
import BrokerReplication
import BrokerMessageCorpus
import Foundation
import Logging
import NIOCore
import Synchronization

/// How hard the built-in load generator drives the leader.
struct LoadPlan: Sendable, Equatable {
    enum Rate: Sendable, Equatable, CustomStringConvertible {
        case recordsPerSecond(Int)
        /// As fast as the leader takes appends.
        case unlimited

        /// Parses `--load-rate`: a positive whole number of records per second, or `max`.
        init(parsing text: String) throws {
            if text == "max" {
                self = .unlimited
            } else if let perSecond = Int(text), perSecond > 0 {
                self = .recordsPerSecond(perSecond)
            } else {
                throw ValidationError("--load-rate must be a positive whole number of records per second or \"max\", got \(text.debugDescription)")
            }
        }

        var description: String {
            switch self {
            case .recordsPerSecond(let perSecond): "\(perSecond) records/s"
            case .unlimited: "max"
            }
        }
    }

    var rate: Rate
    var durationSeconds: Double
    /// Records go round-robin to `segments/segment-0` ... `segments/segment-<files - 1>`.
    var files: Int
    /// Fixed-size records of this many bytes; nil for broker-like JSON events of about 150 bytes.
    var recordBytes: Int?
    /// Wait for each burst to be confirmed (`waitForReplication`) before the next.
    var confirm = false

    /// Files the records go to.
    var paths: [String] { (0..<files).map { "segments/segment-\($0)" } }
}

/// What the load generator has done so far; the status file reads it while the load runs.
final class LoadProgress: Sendable {
    private struct State {
        var records = 0
        var finished = false
    }

    private let state = Mutex(State())

    var records: Int { state.withLock { $0.records } }
    var finished: Bool { state.withLock { $0.finished } }

    func update(records: Int) { state.withLock { $0.records = records } }

    func finish(records: Int) {
        state.withLock {
            $0.records = records
            $0.finished = true
        }
    }
}

/// Appends generated records to a leader at a paced or unlimited rate for a fixed time.
///
/// A paced rate appends in small bursts every 10 ms, catching up to `rate × elapsed`, and
/// writes exactly `rate × duration` records when the leader keeps up. The records come from
/// a pool generated before the clock starts, so the figures measure the leader and not the
/// generator. The pool is larger than an LZ4 window (64 KiB), so repeats do not make the
/// data compress better than fresh events would.
struct LoadGenerator: Sendable {
    let plan: LoadPlan
    let logger: Logger

    private static let burstInterval: Duration = .milliseconds(10)
    /// Appends between clock checks at an unlimited rate.
    private static let unlimitedBurst = 64

    struct Summary: Sendable {
        var records: Int
        var bytes: Int
        var seconds: Double
        /// A shutdown stopped the load before its end.
        var stopped = false

        var recordsPerSecond: Double { seconds > 0 ? Double(records) / seconds : 0 }
        var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }

        /// `load finished: 15000 records, 2331000 bytes in 3.00 seconds: 5000 records/s, 0.78 MB/s (MB = 10^6 bytes)`,
        /// or `load stopped by the shutdown: ...`.
        var logLine: String {
            String(
                format: "load \(stopped ? "stopped by the shutdown" : "finished"): %d records, %d bytes in %.2f seconds: %.0f records/s, %.2f MB/s (MB = 10^6 bytes)",
                records, bytes, seconds, recordsPerSecond, megabytesPerSecond
            )
        }
    }

    /// Runs the load, flushes the leader, and reports the totals in `progress`. Cancelling it
    /// stops the load early: it still flushes and reports, and `progress` stays unfinished.
    func run(on leader: ReplicationLeader, progress: LoadProgress) async throws -> Summary {
        let pool = Self.recordPool(recordBytes: plan.recordBytes)
        let paths = plan.paths
        let clock = ContinuousClock()
        let start = clock.now
        let duration = Duration.nanoseconds(Int64(plan.durationSeconds * 1e9))
        let deadline = start + duration
        var records = 0
        var bytes = 0
        var lastLSN: UInt64 = 0
        var refused = 0

        // In min-ISR mode a write or a confirm can fail with notEnoughReplicas: count it, keep going.
        func appendNext() async throws {
            let record = pool[records % pool.count]
            do {
                lastLSN = try await leader.append(to: paths[records % paths.count], bytes: record)
                records += 1
                bytes += record.readableBytes
            } catch let error as ReplicationError where error.isNotEnoughReplicas {
                refused += 1
                logger.warning("write refused", metadata: ["error": "\(error)"])
            }
        }

        func confirmBurst() async throws {
            guard plan.confirm, lastLSN > 0 else { return }
            do {
                try await leader.waitForReplication(upTo: lastLSN)
            } catch let error as ReplicationError where error.isNotEnoughReplicas {
                refused += 1
                logger.warning("confirm failed", metadata: ["error": "\(error)"])
            }
        }

        logger.info("load started", metadata: [
            "rate": "\(plan.rate)", "durationSeconds": "\(plan.durationSeconds)", "files": "\(plan.files)",
            "recordBytes": "\(plan.recordBytes.map(String.init) ?? "about 150 (broker-like JSON events)")",
            "confirm": "\(plan.confirm)",
        ])
        do {
            switch plan.rate {
            case .unlimited:
                while clock.now < deadline {
                    try Task.checkCancellation()
                    for _ in 0..<Self.unlimitedBurst { try await appendNext() }
                    try await confirmBurst()
                    progress.update(records: records)
                }
            case .recordsPerSecond(let perSecond):
                let total = Int((Double(perSecond) * plan.durationSeconds).rounded())
                while records < total {
                    try Task.checkCancellation()
                    let now = clock.now
                    let elapsed = now - start
                    let due = now >= deadline ? total : min(total, Int(Double(perSecond) * Self.seconds(elapsed)))
                    // Behind a leader that cannot keep up, this loop never catches up: check here too.
                    while records < due {
                        try Task.checkCancellation()
                        try await appendNext()
                    }
                    try await confirmBurst()
                    progress.update(records: records)
                    if records < total { try await Task.sleep(until: min(now + Self.burstInterval, deadline), clock: clock) }
                }
            }
        } catch where Task.isCancelled {
            // Stopped by a shutdown: the load ends here, and the leader still gets its flush.
            leader.flush()
            progress.update(records: records)
            return Summary(records: records, bytes: bytes, seconds: Self.seconds(clock.now - start), stopped: true)
        }
        let seconds = Self.seconds(clock.now - start)
        leader.flush()
        progress.finish(records: records)
        return Summary(records: records, bytes: bytes, seconds: seconds)
    }

    /// About 1.2 MB of records to cycle through: broker-like events, or fixed-size slices of them.
    static func recordPool(recordBytes: Int?) -> [ByteBuffer] {
        var corpus = BrokerMessageCorpus()
        guard let recordBytes else {
            return (0..<8192).map { _ in ByteBuffer(bytes: corpus.nextMessage()) }
        }
        let count = max(1, min(8192, 1_200_000 / recordBytes))
        return (0..<count).map { _ in
            var record = ByteBuffer()
            record.reserveCapacity(recordBytes)
            while record.readableBytes < recordBytes {
                let message = corpus.nextMessage()
                record.writeBytes(message.prefix(recordBytes - record.readableBytes))
            }
            return record
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
