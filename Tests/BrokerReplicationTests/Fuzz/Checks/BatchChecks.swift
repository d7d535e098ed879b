import LZ4
import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// A data frame's body through the batch and record decoder.
///
/// Each input is read twice: as the body a leader sends (header, then an LZ4 block), and as the
/// same header followed by an uncompressed payload that is compressed here, so that the fuzzer
/// reaches the record decoder without first having to learn LZ4's block format.
enum BatchChecks {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        if let frame = try? DataFrame(decoding: Frame(type: .data, body: ByteBuffer(bytes: input))) {
            _ = try check(frame)
        }
        guard input.count > DataFrame.headerBytes else { return }
        var header = ByteBuffer(bytes: input.prefix(DataFrame.headerBytes))
        let payload = Array(input[DataFrame.headerBytes...])
        guard let compressed = try? LZ4BlockCompressor().compress(payload) else { return }
        let frame = DataFrame(
            firstLSN: header.readInteger(as: UInt64.self)!, recordCount: header.readInteger(as: UInt32.self)!,
            uncompressedBytes: UInt32(payload.count), codec: DataFrame.codecLZ4Block, compressed: ByteBuffer(bytes: compressed)
        )
        guard let records = try check(frame) else { return }
        try ensure(encoded(records) == payload, "records re-encode to another payload")
    }

    /// The records of `frame` when it decodes, after checking that they are what it declared,
    /// within the limits, inside the data directory, and re-encode to its decompressed payload.
    static func check(_ frame: DataFrame) throws(FuzzViolation) -> [ReplicationRecord]? {
        guard let records = try? BatchDecoder(limits: fuzzLimits).records(of: frame) else { return nil }
        try ensure(records.count == Int(frame.recordCount), "\(records.count) records decoded, \(frame.recordCount) declared")
        try ensure(Int(frame.uncompressedBytes) <= fuzzLimits.maximumBatchBytes, "a batch of \(frame.uncompressedBytes) bytes decoded")
        for record in records {
            try PathChecks.ensureInsideDataDirectory(record.path)
            switch record {
            case .append(_, let offset, let bytes), .replace(_, let offset, let bytes, _):
                try ensure(offset + UInt64(bytes.readableBytes) <= UInt64(Int64.max), "a record ends beyond any file")
            case .delete: break
            }
        }
        let payload = try? LZ4Block.decompress(
            frame.compressed.readableBytesView, declaredSize: Int(frame.uncompressedBytes), maximumBytes: fuzzLimits.maximumBatchBytes
        )
        try ensure(payload == encoded(records), "records re-encode to another payload than the frame's")
        return records
    }

    private static func encoded(_ records: [ReplicationRecord]) -> [UInt8] {
        var buffer = ByteBuffer()
        for record in records { record.write(to: &buffer) }
        return Array(buffer.readableBytesView)
    }
}
