@_spi(Benchmarks) import BrokerReplication
import BrokerMessageCorpus
import LZ4
import NIOCore

/// The messages producers write: a deterministic pool generated before any clock starts, so
/// the figures measure the leader and not the generator.
///
/// Broker-like JSON events of about 150 bytes (``BrokerMessageCorpus``), or fixed-size records
/// cut from the same events. The pool holds at least 1.2 MB, far more than LZ4's 64 KiB
/// window, so cycling through it compresses no better than fresh events would.
struct RecordPool: Sendable {
    let records: [ByteBuffer]
    /// Fixed record size, or nil for the broker-like events.
    let recordBytes: Int?

    init(recordBytes: Int?) {
        self.recordBytes = recordBytes
        var corpus = BrokerMessageCorpus()
        guard let recordBytes else {
            records = (0..<8192).map { _ in ByteBuffer(bytes: corpus.nextMessage()) }
            return
        }
        // At least 1.2 MB and at least 16 records (64 KiB records: 19 of them).
        let count = max(16, min(8192, 1_200_000 / recordBytes + 1))
        records = (0..<count).map { _ in
            var record = ByteBuffer()
            record.reserveCapacity(recordBytes)
            while record.readableBytes < recordBytes {
                let message = corpus.nextMessage()
                record.writeBytes(message.prefix(recordBytes - record.readableBytes))
            }
            return record
        }
    }

    var averageRecordBytes: Double {
        Double(records.reduce(0) { $0 + $1.readableBytes }) / Double(records.count)
    }

    /// "broker-like JSON events (average 157 bytes)" or "fixed 1024-byte records".
    var label: String {
        if let recordBytes { return "fixed \(recordBytes)-byte records" }
        return String(format: "broker-like JSON events (average %.0f bytes)", averageRecordBytes)
    }
}

/// The machine's ceiling for this workload: LZ4 block compression alone of the same records,
/// encoded into batch payloads exactly as the leader encodes them, on one core.
///
/// The records are encoded into payloads first (not timed), then only the compression of each
/// payload, sealed at `batchBytes`, is timed; the best of `rounds` rounds counts. Everything
/// else the leader does per byte (the local write, batching, checksums, the network) comes on
/// top of this, so a leader's payload rate as a fraction of it compares across machines.
struct CompressionCeiling {
    var bytesPerSecond: Double
    var compressionRatio: Double
    var payloadBytes: Int

    static func measure(pool: RecordPool, batchBytes: Int, targetPayloadBytes: Int = 64 << 20, rounds: Int = 3) -> CompressionCeiling {
        // The producers' own kind of paths, one per producer-like stream.
        let paths = (0..<8).map { try! ReplicatedPath("queues/q\($0)/segment.0000000001") }
        var offsets = [UInt64](repeating: 0, count: paths.count)
        var payloads: [ByteBuffer] = []
        var payload = ByteBuffer()
        payload.reserveCapacity(batchBytes + 64 * 1024)
        var total = 0
        var index = 0
        while total < targetPayloadBytes {
            let record = pool.records[index % pool.records.count]
            let stream = index % paths.count
            ReplicationRecord.append(path: paths[stream], offset: offsets[stream], bytes: record).write(to: &payload)
            offsets[stream] += UInt64(record.readableBytes)
            index += 1
            if payload.readableBytes >= batchBytes {
                total += payload.readableBytes
                payloads.append(payload)
                payload = ByteBuffer()
                payload.reserveCapacity(batchBytes + 64 * 1024)
            }
        }
        let largest = payloads.map(\.readableBytes).max() ?? batchBytes
        var output = [UInt8](repeating: 0, count: LZ4Block.maximumCompressedBytes(forInputBytes: largest))
        let compressor = LZ4BlockCompressor()
        var best = Double.infinity
        var compressedBytes = 0
        for _ in 0..<rounds {
            compressedBytes = 0
            let start = monotonicNanoseconds()
            for payload in payloads {
                payload.withUnsafeReadableBytes { source in
                    output.withUnsafeMutableBytes { compressedBytes += try! compressor.compress(source, into: $0) }
                }
            }
            best = min(best, Double(monotonicNanoseconds() - start) / 1e9)
        }
        return CompressionCeiling(
            bytesPerSecond: Double(total) / best, compressionRatio: Double(total) / Double(max(1, compressedBytes)), payloadBytes: total
        )
    }
}
