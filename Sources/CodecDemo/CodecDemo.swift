import ArgumentParser
import BrokerReplication
import BrokerReplicationTesting
import LZ4
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Encodes a generated corpus of broker messages into batches exactly as the leader does,
/// compresses each batch once, decodes everything back, checks it, and prints the rates.
@main
struct CodecDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec-demo",
        abstract: "Encode, compress and decode broker-like messages with the replication wire format, and report the rates."
    )

    @Option(help: "How many messages (JSON events of about 150 bytes) to generate.")
    var messages: Int = 400_000

    @Option(help: "Seal a batch once its uncompressed records reach this many bytes.")
    var batchBytes: Int = 64 * 1024

    @Option(help: "How many timed rounds; the best round is reported.")
    var rounds: Int = 3

    mutating func validate() throws {
        guard messages > 0 else { throw ValidationError("--messages must be at least 1") }
        guard (1...WireLimits.default.maximumBatchBytes).contains(batchBytes) else {
            throw ValidationError("--batch-bytes must be 1...\(WireLimits.default.maximumBatchBytes)")
        }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be 1...20") }
    }

    func run() throws {
        var corpus = BrokerMessageCorpus()
        let bodies = corpus.messages(count: messages).map { ByteBuffer(bytes: $0) }
        let paths = (0..<8).map { try! ReplicatedPath("queues/q\($0)/segment.0000000001") }
        var fileSizes = [UInt64](repeating: 0, count: paths.count)
        let records = bodies.enumerated().map { index, body in
            defer { fileSizes[index % paths.count] += UInt64(body.readableBytes) }
            return ReplicationRecord.append(path: paths[index % paths.count], offset: fileSizes[index % paths.count], bytes: body)
        }
        let messageBytes = bodies.reduce(0) { $0 + $1.readableBytes }
        print("codec-demo: \(messages) messages, \(messageBytes) message bytes "
            + "(average \(messageBytes / messages) bytes), batches sealed at \(batchBytes) bytes, best of \(rounds) rounds")

        var best = (encode: Double.infinity, decode: Double.infinity, compressOnly: Double.infinity)
        var batches: [SealedBatch] = []
        let compressor = LZ4BlockCompressor()
        for _ in 0..<rounds {
            var start = monotonicSeconds()
            batches = encode(records, compressor: compressor)
            best.encode = min(best.encode, monotonicSeconds() - start)

            start = monotonicSeconds()
            let decoded = try decode(batches)
            best.decode = min(best.decode, monotonicSeconds() - start)
            guard decoded == records else {
                throw ValidationError("decoded records differ from the originals: the codec is broken")
            }

            start = monotonicSeconds()
            compressOnly(records, compressor: compressor)
            best.compressOnly = min(best.compressOnly, monotonicSeconds() - start)
        }

        let payloadBytes = batches.reduce(0) { $0 + $1.payloadBytes }
        let wireBytes = batches.reduce(0) { $0 + $1.wireBytes }
        func rate(_ seconds: Double) -> String { String(format: "%8.1f MB/s  %10.0f records/s", Double(payloadBytes) / seconds / 1e6, Double(messages) / seconds) }
        print("batches:                        \(batches.count)")
        print("payload (uncompressed records): \(payloadBytes) bytes")
        print("wire (frames, headers included): \(wireBytes) bytes")
        print(String(format: "compression ratio:              %.2fx (payload bytes / wire bytes)", Double(payloadBytes) / Double(wireBytes)))
        print("encode + compress + checksum:   \(rate(best.encode))   (one core)")
        print("LZ4 compress alone (ceiling):   \(rate(best.compressOnly))   (one core)")
        print("verify + decompress + decode:   \(rate(best.decode))   (one core)")
        print("verified: all \(messages) records decoded equal to the originals (MB = 10^6 bytes)")
    }

    private func encode(_ records: [ReplicationRecord], compressor: LZ4BlockCompressor) -> [SealedBatch] {
        var builder = BatchBuilder(initialCapacity: batchBytes + 1024)
        var sealed: [SealedBatch] = []
        for (index, record) in records.enumerated() {
            builder.append(record, lsn: UInt64(index + 1))
            if builder.payloadBytes >= batchBytes { sealed.append(builder.seal(using: compressor)) }
        }
        if !builder.isEmpty { sealed.append(builder.seal(using: compressor)) }
        return sealed
    }

    /// The full receive path: frame parse and checksum, LSN order, decompress, record decode.
    private func decode(_ batches: [SealedBatch]) throws -> [ReplicationRecord] {
        var parser = FrameParser(preamble: .none)
        var sequence = LSNSequence(nextLSN: 1)
        let decoder = BatchDecoder()
        var records: [ReplicationRecord] = []
        records.reserveCapacity(messages)
        for batch in batches {
            var bytes = batch.frame
            guard let frame = try parser.next(from: &bytes), case .data(let data) = try WireMessage(decoding: frame) else {
                throw ValidationError("a sealed batch did not parse as one data frame")
            }
            try sequence.accept(data)
            records.append(contentsOf: try decoder.records(of: data))
        }
        return records
    }

    /// LZ4 alone over the same batch payloads: the one-core ceiling the codec is measured against.
    private func compressOnly(_ records: [ReplicationRecord], compressor: LZ4BlockCompressor) {
        var payload = ByteBuffer()
        var output = [UInt8](repeating: 0, count: LZ4Block.maximumCompressedBytes(forInputBytes: batchBytes + 64 * 1024))
        var sink = 0
        func flush() {
            payload.withUnsafeReadableBytes { source in
                output.withUnsafeMutableBytes { sink &+= try! compressor.compress(source, into: $0) }
            }
            payload.clear()
        }
        for record in records {
            record.write(to: &payload)
            if payload.readableBytes >= batchBytes { flush() }
        }
        if payload.readableBytes > 0 { flush() }
        precondition(sink > 0)
    }
}

private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
