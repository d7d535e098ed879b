import BrokerReplication
import Histogram
import NIOCore
import Synchronization

/// Totals every producer adds to as it goes, read by the sampler every 250 ms.
final class LoadCounters: Sendable {
    let records = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)

    func add(records: Int, bytes: Int) {
        self.records.wrappingAdd(records, ordering: .relaxed)
        self.bytes.wrappingAdd(bytes, ordering: .relaxed)
    }
}

/// Latencies in nanoseconds, from 1 ns to 2 minutes, three significant digits.
func makeLatencyHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
}

/// What one producer did.
struct ProducerResult: Sendable {
    var appendLatency = makeLatencyHistogram()
    var records = 0
    var bytes = 0
    /// Appends and deletes refused with `notEnoughReplicas` (min-ISR only).
    var refusedWrites = 0
    var segmentsDeleted = 0
    /// Segment files it appended to (each counted at its first append).
    var filesStarted = 0
}

/// One broker-like producer: appends records to its queues' segment files, in turn, one
/// append call per queue per turn, as fast as the leader takes them or at `bytesPerSecond`;
/// each queue rolls to a new segment every `segmentBytes` and deletes its oldest beyond the
/// ones it keeps (``SegmentedQueue``), until the deadline or `maxRecords`, whichever comes
/// first.
///
/// Each append call appends `appendBatch` records, and its latency goes into an HdrHistogram. Under min-ISR each burst's last LSN goes
/// to a ``ConfirmTracker``, which waits for its confirm without holding the producer, like an
/// AMQP publisher with asynchronous confirms.
struct Producer: Sendable {
    let index: Int
    let leader: ReplicationLeader
    let pool: RecordPool
    /// The queues it owns (``FileLayout/queues(ofProducer:producers:)``), at least one.
    let queues: [SegmentedQueue]
    let segmentBytes: Int
    /// Records between a yield (and a confirm request), at least one append call; a broker's
    /// connection task suspends on its socket at least this often, which lets the leader's
    /// own tasks run.
    let burst: Int
    /// Records per append call: 1 calls `append(to:bytes:)`, more `append(to:contentsOf:)`.
    let appendBatch: Int
    /// This producer's share of `--rate` in record bytes per second, nil for as fast as it can.
    let bytesPerSecond: Double?

    func run(deadlineNanoseconds: UInt64, maxRecords: Int, counters: LoadCounters, confirms: ConfirmTracker?) async throws -> ProducerResult {
        var result = ProducerResult()
        let records = pool.records
        // Producers start at different places in the pool, so they do not write the same bytes.
        var next = (index * 1543) % records.count
        var queues = self.queues
        var turn = 0
        var pacer = bytesPerSecond.map { Pacer(bytesPerSecond: $0, startNanoseconds: monotonicNanoseconds()) }
        var stop = false
        var batch: [ByteBuffer] = []
        batch.reserveCapacity(appendBatch)
        let callsPerBurst = max(1, burst / appendBatch)
        while !stop, result.records < maxRecords {
            var lastLSN: UInt64 = 0
            var burstRecords = 0
            var burstBytes = 0
            for _ in 0..<callsPerBurst {
                let call: AppendCall
                do {
                    call = try await appendNext(to: queues[turn].path, from: records, at: &next, batch: &batch)
                    lastLSN = call.lsn
                } catch let error as ReplicationError where error.isNotEnoughReplicas {
                    result.refusedWrites += 1
                    if monotonicNanoseconds() >= deadlineNanoseconds {
                        stop = true
                        break
                    }
                    continue
                }
                let end = monotonicNanoseconds()
                result.appendLatency.record(end - call.startNanoseconds)
                burstRecords += call.records
                burstBytes += call.bytes
                if let oldest = queues[turn].appended(bytes: call.bytes, rollBytes: segmentBytes) {
                    do {
                        try await leader.delete(oldest)
                        result.segmentsDeleted += 1
                    } catch let error as ReplicationError where error.isNotEnoughReplicas {
                        result.refusedWrites += 1
                    }
                }
                turn = turn + 1 == queues.count ? 0 : turn + 1
                if end >= deadlineNanoseconds || result.records + burstRecords >= maxRecords { break }
            }
            result.records += burstRecords
            result.bytes += burstBytes
            counters.add(records: burstRecords, bytes: burstBytes)
            if lastLSN > 0 { confirms?.request(lsn: lastLSN, appendedAt: monotonicNanoseconds()) }
            let now = monotonicNanoseconds()
            if stop || now >= deadlineNanoseconds { break }
            if let delay = pacer?.delay(afterSending: burstBytes, now: now), delay > 0 {
                try? await Task.sleep(for: .nanoseconds(Int64(min(delay, deadlineNanoseconds - now))))
            } else {
                await Task.yield()
            }
        }
        result.filesStarted = queues.reduce(0) { $0 + $1.filesStarted }
        return result
    }

    /// Appends one record to the first segment of each of its queues, so that the files (and
    /// their directories) exist before the load, as a broker's queues do.
    func createQueues() async throws {
        for (offset, queue) in queues.enumerated() {
            _ = try await leader.append(to: queue.path, bytes: pool.records[(index + offset) % pool.records.count])
        }
    }

    struct AppendCall {
        var lsn: UInt64
        var records: Int
        var bytes: Int
        var startNanoseconds: UInt64
    }

    /// One append call of `appendBatch` records from the pool, from `next` on. The records
    /// are taken from the pool before the clock starts; with one record per call this is
    /// exactly the benchmark's original `append(to:bytes:)` loop.
    private func appendNext(to path: String, from records: [ByteBuffer], at next: inout Int, batch: inout [ByteBuffer]) async throws -> AppendCall {
        if appendBatch == 1 {
            let record = records[next]
            next = next + 1 == records.count ? 0 : next + 1
            let start = monotonicNanoseconds()
            let lsn = try await leader.append(to: path, bytes: record)
            return AppendCall(lsn: lsn, records: 1, bytes: record.readableBytes, startNanoseconds: start)
        }
        batch.removeAll(keepingCapacity: true)
        var bytes = 0
        for _ in 0..<appendBatch {
            batch.append(records[next])
            bytes += records[next].readableBytes
            next = next + 1 == records.count ? 0 : next + 1
        }
        let start = monotonicNanoseconds()
        let lsn = try await leader.append(to: path, contentsOf: batch)
        return AppendCall(lsn: lsn, records: batch.count, bytes: bytes, startNanoseconds: start)
    }
}

/// Waits for each burst's confirm in order, in its own task, and records how long each took
/// from the end of the burst's last append.
///
/// The producer hands over `(lsn, time)` and carries on; one waiter per producer walks the
/// bursts in order, so a wait returns as soon as that burst is confirmed (at once when it
/// already is). Each wait is bounded by the leader's `producerTimeout`, and the whole drain
/// after the load by `drainDeadlineNanoseconds`.
final class ConfirmTracker: Sendable {
    struct Result: Sendable {
        var latency = makeLatencyHistogram()
        var confirmed = 0
        /// Confirms that failed with `notEnoughReplicas` within `producerTimeout`.
        var failed = 0
        /// Bursts still unconfirmed when the drain deadline passed.
        var unconfirmedAtEnd = 0
    }

    private let requests: AsyncStream<(lsn: UInt64, appendedAt: UInt64)>.Continuation
    private let waiter: Task<Result, Never>

    init(leader: ReplicationLeader, drainDeadlineNanoseconds: UInt64) {
        let (stream, continuation) = AsyncStream<(lsn: UInt64, appendedAt: UInt64)>.makeStream(bufferingPolicy: .unbounded)
        self.requests = continuation
        let producerTimeout = leader.configuration.producerTimeout
        let timeoutNanoseconds = UInt64(producerTimeout.components.seconds) * 1_000_000_000 + UInt64(producerTimeout.components.attoseconds / 1_000_000_000)
        self.waiter = Task {
            var result = Result()
            for await burst in stream {
                let now = monotonicNanoseconds()
                guard now < drainDeadlineNanoseconds else {
                    result.unconfirmedAtEnd += 1
                    continue
                }
                let cutShort = drainDeadlineNanoseconds - now < timeoutNanoseconds
                let timeout = Duration.nanoseconds(Int64(min(timeoutNanoseconds, drainDeadlineNanoseconds - now)))
                do {
                    try await leader.waitForReplication(upTo: burst.lsn, timeout: timeout)
                    result.latency.record(monotonicNanoseconds() - burst.appendedAt)
                    result.confirmed += 1
                } catch {
                    if cutShort { result.unconfirmedAtEnd += 1 } else { result.failed += 1 }
                }
            }
            return result
        }
    }

    func request(lsn: UInt64, appendedAt: UInt64) {
        requests.yield((lsn, appendedAt))
    }

    /// No more bursts; returns once every burst is confirmed, failed, or past the drain deadline.
    func finish() async -> Result {
        requests.finish()
        return await waiter.value
    }
}
