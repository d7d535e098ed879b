import Benchmark
@_spi(Benchmarks) import BrokerReplication

// Malloc counts here are exact only without the operating-system metrics: `.cpuTotal` and
// `.peakMemoryResident` make the framework read /proc around every iteration, which adds 16
// mallocs to each one, and `.cpuTotal` moves in 10 ms ticks, longer than most iterations.
// No retain/release metrics (`.retainCount`, `.releaseCount`, `.retainReleaseDelta`, or the
// `.arc` and `.all` sets): they crash on the Swift 6.3 Linux toolchain here. With the malloc
// interposer, memory kept past an iteration is `.memoryLeakedBytes` (`.memoryLeaked` is
// jemalloc's and stays empty).
let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal, .memoryLeakedBytes]

/// One iteration is one unit of the work named in the benchmark (one batch, 1,000 records);
/// with `scalingFactor`, figures are per operation.
func configuration(scalingFactor: BenchmarkScalingFactor = .one) -> Benchmark.Configuration {
    .init(metrics: metrics, warmupIterations: 5, scalingFactor: scalingFactor, maxDuration: .seconds(2), maxIterations: 100_000)
}

let benchmarks: @Sendable () -> Void = {
    // Leader, per batch: 64 KiB of append records encoded, LZ4-compressed once, framed with
    // a CRC32C. One iteration = one batch.
    let encode = EncodeFixture()
    Benchmark("encode+compress batch", configuration: configuration()) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(encode.sealNextBatch())
        }
    }

    // The one-core ceiling of the leader's batch path: LZ4 block compression alone of one
    // 64 KiB payload of encoded records, into a buffer made once. One iteration = one payload.
    let compress = CompressFixture()
    Benchmark("LZ4 compress payload", configuration: configuration()) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try compress.compressPayload())
        }
    }

    // Leader, per follower and batch: offer the shared frame to the follower's bounded queue
    // (never waits), then the connection's writer takes what is queued, up to 1 MiB at a time
    // as the leader's does. The queue holds one frame at a time: the steady state of a
    // follower that keeps up. One operation = one trySend and one take.
    let frame = sealedBatches(of: brokerAppendRecords(count: 512))[0]
    var queue = OutboundQueue(maximumBytes: 64 * 1024 * 1024, maximumFrames: 65_536)
    Benchmark("trySend", configuration: configuration(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            precondition(queue.trySend(frame) == .enqueued, "the queue is drained every time")
            blackHole(queue.take(upToBytes: 1 << 20))
        }
    }

    // Follower, per batch: frame header and CRC32C check, decompress, decode the records.
    // One iteration = one batch.
    let receive = ReceiveFixture()
    Benchmark("decode", configuration: configuration()) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try receive.decode(receive.takeNextBatch()))
        }
    }

    // Follower, per batch: decode as above, then write every record to its file in a
    // temporary data directory (durable: false, so no fsync). One iteration = one batch.
    Benchmark("decode+apply", configuration: configuration()) { benchmark in
        let applier = receive.applier!
        for _ in benchmark.scaledIterations {
            try applier.apply(try receive.decode(receive.takeNextBatch()))
        }
    } setup: {
        try receive.setUp()
    } teardown: {
        try receive.tearDown()
    }

    // The public write path with no follower: 1,000 appends of ~150 bytes per iteration, so
    // that the per-batch allocations show against the per-record ones. Figures are per
    // 1,000 records (about 3 batches of 64 KiB).
    let leaderFixture = LeaderFixture()
    Benchmark("append path (per 1,000 records)", configuration: configuration()) { benchmark in
        let leader = leaderFixture.leader!
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                let message = leaderFixture.takeNextMessage()
                blackHole(try await leader.append(to: message.path, bytes: message.bytes))
            }
        }
    } setup: {
        try leaderFixture.setUp()
    } teardown: {
        try leaderFixture.tearDown()
    }
}
