import LZ4

/// Why bytes from a peer were refused. Every decoder throws one of these and never crashes.
///
/// Any of them closes the connection; a follower then reconnects and resyncs, so a refused
/// frame loses nothing (the leader still holds the records in its backlog or its files).
///
/// The module's own: a public API reports it as a ``ReplicationError`` with code
/// ``ReplicationError/Code/protocolViolation`` (``ReplicationError/Code/invalidPath`` for a
/// bad path) and this error's description as its message.
// `@_spi(Benchmarks)`: the micro-benchmarks call decoders and storage that throw it; brokers
// never see it (public APIs wrap it in ReplicationError).
@_spi(Benchmarks) public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    enum Code: Hashable, Sendable {
        case badMagic(received: [UInt8])
        case unsupportedProtocolVersion(received: UInt16, supported: UInt16)
        case unknownFrameType(UInt8)
        case frameTooLarge(type: FrameType, bodyBytes: Int, limit: Int)
        case checksumMismatch(type: FrameType, expected: UInt32, computed: UInt32)
        case malformedFrame(type: FrameType, reason: String)
        case unknownCodec(UInt8)
        case batchTooLarge(declaredBytes: Int, limit: Int)
        case tooManyRecords(declared: Int, limit: Int)
        case decompressionFailed(LZ4Error)
        case malformedBatch(reason: String)
        case unknownRecordKind(UInt8)
        case invalidPath(path: String, reason: String)
        case lsnGap(expected: UInt64, received: UInt64)
        case unexpectedFrame(type: FrameType, state: String)
        case authenticationFailed(type: FrameType, sequence: UInt64)
    }

    let code: Code

    init(_ code: Code) { self.code = code }

    /// What was refused and why, with the values involved, e.g.
    /// `data frame of 10485760 bytes exceeds the limit of 9437184 bytes`.
    public var description: String {
        switch code {
        case .badMagic(let received):
            let hex = received.map { String($0, radix: 16) }.joined(separator: " ")
            return "not a BrokerReplication peer: the stream starts with bytes [\(hex)], expected \"BRPL\""
        case .unsupportedProtocolVersion(let received, let supported):
            return "unsupported protocol version \(received); this node speaks version \(supported)"
        case .unknownFrameType(let type):
            return "unknown frame type 0x\(String(type, radix: 16))"
        case .frameTooLarge(let type, let bodyBytes, let limit):
            return "\(type) frame of \(bodyBytes) bytes exceeds the limit of \(limit) bytes"
        case .checksumMismatch(let type, let expected, let computed):
            return "\(type) frame checksum mismatch: header says 0x\(String(expected, radix: 16)), "
                + "bytes give 0x\(String(computed, radix: 16)) (corrupted in transit)"
        case .malformedFrame(let type, let reason):
            return "malformed \(type) frame: \(reason)"
        case .unknownCodec(let codec):
            return "data frame uses unknown codec \(codec); version 3 knows only 1 (LZ4 block)"
        case .batchTooLarge(let declaredBytes, let limit):
            return "batch declares \(declaredBytes) decompressed bytes, above the limit of \(limit) bytes"
        case .tooManyRecords(let declared, let limit):
            return "batch declares \(declared) records, above the limit of \(limit)"
        case .decompressionFailed(let error):
            return "batch does not decompress: \(error)"
        case .malformedBatch(let reason):
            return "malformed batch: \(reason)"
        case .unknownRecordKind(let kind):
            return "unknown record kind \(kind)"
        case .invalidPath(let path, let reason):
            return "invalid path \(path.debugDescription): \(reason)"
        case .lsnGap(let expected, let received):
            if received > expected {
                return "LSN gap: expected LSN \(expected), frame starts at \(received) (\(received - expected) records missing)"
            }
            return "LSN went backwards: expected LSN \(expected), frame starts at \(received) (records repeated)"
        case .unexpectedFrame(let type, let state):
            return "unexpected \(type) frame while \(state)"
        case .authenticationFailed(let type, let sequence):
            return "\(type) frame \(sequence) failed authentication: its tag does not match its bytes "
                + "(changed on the way, or the peer holds another shared secret); nothing in it was used"
        }
    }
}
