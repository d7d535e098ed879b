import LZ4
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Batch codec")
struct BatchCodecTests {
    private func decodeSealed(_ sealed: SealedBatch, limits: WireLimits = .default) throws -> (DataFrame, [ReplicationRecord]) {
        var bytes = sealed.frame
        var parser = FrameParser(limits: limits, preamble: .none)
        let frame = try #require(try parser.next(from: &bytes))
        guard case .data(let data) = try WireMessage(decoding: frame) else { throw WireError(.malformedBatch(reason: "not data")) }
        return (data, try BatchDecoder(limits: limits).records(of: data))
    }

    @Test func recordsRoundTripInOrder() throws {
        let sealed = TestFrames.sealed(TestFrames.sampleRecords, firstLSN: 1000)
        let (data, records) = try decodeSealed(sealed)
        #expect(records == TestFrames.sampleRecords)
        #expect(data.firstLSN == 1000)
        #expect(data.lastLSN == 1000 + UInt64(TestFrames.sampleRecords.count) - 1)
        #expect(sealed.payloadBytes == TestFrames.sampleRecords.reduce(0) { $0 + $1.encodedBytes })
    }

    @Test func builderIsReusableAndSealsConsecutiveBatches() throws {
        var builder = BatchBuilder()
        let compressor = LZ4BlockCompressor()
        var sequence = LSNSequence(nextLSN: 1)
        var lsn: UInt64 = 1
        for round in 0..<5 {
            for record in TestFrames.sampleRecords.prefix(round + 1) {
                builder.append(record, lsn: lsn)
                lsn += 1
            }
            let (data, records) = try decodeSealed(builder.seal(using: compressor))
            try sequence.accept(data)
            #expect(records == Array(TestFrames.sampleRecords.prefix(round + 1)))
            #expect(builder.isEmpty)
        }
        #expect(sequence.nextLSN == lsn)
    }

    @Test func incompressibleBatchStillFitsItsFrame() throws {
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let record = ReplicationRecord.append(path: TestFrames.path("noise"), offset: 0, bytes: ByteBuffer(bytes: noise))
        let sealed = TestFrames.sealed([record])
        #expect(sealed.wireBytes > noise.count)
        #expect(try decodeSealed(sealed).1 == [record])
    }

    @Test func lsnSequenceRefusesGapsAndRepeats() throws {
        var sequence = LSNSequence(nextLSN: 10)
        try sequence.accept(TestFrames.dataFrame(payload: [3, 0, 1, 0x61], firstLSN: 10, recordCount: 1))
        let gap = #expect(throws: WireError.self) {
            try sequence.accept(TestFrames.dataFrame(payload: [3, 0, 1, 0x61], firstLSN: 12, recordCount: 1))
        }
        #expect(gap?.description == "LSN gap: expected LSN 11, frame starts at 12 (1 records missing)")
        let repeated = #expect(throws: WireError.self) {
            try sequence.accept(TestFrames.dataFrame(payload: [3, 0, 1, 0x61], firstLSN: 10, recordCount: 1))
        }
        #expect(repeated?.code == .lsnGap(expected: 11, received: 10))
        #expect(sequence.nextLSN == 11)
    }

    static let deleteA: [UInt8] = [3, 0, 1, 0x61]
    static let offsetZero: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
    static let appendA: [UInt8] = [1, 0, 1, 0x61] + offsetZero + [0, 0, 0, 2, 0x68, 0x69]

    /// Payloads that decompress fine but do not hold what the header declares.
    static let badPayloads: [(payload: [UInt8], count: UInt32, reason: String)] = [
        (deleteA + deleteA, 1, "4 bytes left after 1 records"),
        (deleteA, 2, "2 records cannot fit in 4 bytes"),
        (appendA + [3, 0], 2, "record 1 is cut short in its path length"),
        ([9, 0, 1, 0x61], 1, "unknown record kind 9"),
        ([2, 4, 0, 1, 0x61] + offsetZero + [0, 0, 0, 0], 1, "unknown replace flags 0b100"),
        ([2], 1, "cannot fit"),
        ([2, 1, 0, 1, 0x61, 0, 0], 1, "record 0 is cut short in its offset"),
        ([2, 1, 0, 1, 0x61] + offsetZero + [0, 0], 1, "record 0 is cut short in its data length"),
        ([1, 0, 1, 0x61] + offsetZero + [0, 0, 0, 9, 0x68, 0x69], 1, "declares 9 data bytes, only 2 left"),
        ([1, 0, 1, 0x61, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1, "beyond any file size"),
        ([3, 0, 2, 0x2E, 0x2E], 1, "invalid path \"..\""),
        ([3, 0, 5, 0x2F, 0x65, 0x74, 0x63, 0x2F], 1, "absolute"),
        ([3, 0, 3, 0x61, 0, 0x62], 1, "NUL"),
        ([3, 0, 2, 0xC3, 0x28], 1, "not valid UTF-8"),
        ([3, 0x20, 0x00] + [UInt8](repeating: 0x61, count: 8192), 1, "above the limit of 4096 bytes"),
        (appendA + appendA, 3, "record 2 is cut short in its kind"),
    ]

    @Test(arguments: badPayloads)
    func refusesPayloadsThatDoNotMatchTheirHeader(payload: [UInt8], count: UInt32, reason: String) {
        let error = #expect(throws: WireError.self) {
            try BatchDecoder().records(of: TestFrames.dataFrame(payload: payload, recordCount: count))
        }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error)) should mention \(reason)")
    }

    @Test func refusesDeclaredSizesAboveTheLimitsBeforeDecompressing() {
        let limits = WireLimits(maximumBatchBytes: 1000, maximumRecordsPerBatch: 10)
        let tooBig = #expect(throws: WireError.self) {
            try BatchDecoder(limits: limits).records(of: TestFrames.dataFrame(payload: Self.deleteA, recordCount: 1, declaredBytes: 1001))
        }
        #expect(tooBig?.code == .batchTooLarge(declaredBytes: 1001, limit: 1000))
        let tooMany = #expect(throws: WireError.self) {
            try BatchDecoder(limits: limits).records(of: TestFrames.dataFrame(payload: Self.deleteA, recordCount: 11))
        }
        #expect(tooMany?.code == .tooManyRecords(declared: 11, limit: 10))
        // A 4 GiB claim is refused from the header, without allocating it.
        let huge = #expect(throws: WireError.self) {
            try BatchDecoder().records(of: TestFrames.dataFrame(payload: Self.deleteA, recordCount: 1, declaredBytes: .max))
        }
        #expect(huge?.code == .batchTooLarge(declaredBytes: Int(UInt32.max), limit: WireLimits.default.maximumBatchBytes))
    }

    @Test func refusesSizeMismatchAndCorruptCompressedBytes() {
        let shortClaim = #expect(throws: WireError.self) {
            try BatchDecoder().records(of: TestFrames.dataFrame(payload: Self.appendA, recordCount: 1, declaredBytes: 4))
        }
        #expect(shortClaim?.description.contains("does not decompress") == true)
        let longClaim = #expect(throws: WireError.self) {
            try BatchDecoder().records(of: TestFrames.dataFrame(payload: Self.appendA, recordCount: 1, declaredBytes: 100))
        }
        #expect(longClaim?.description.contains("does not decompress") == true)
        var frame = TestFrames.dataFrame(payload: Self.appendA, recordCount: 1)
        frame.compressed = ByteBuffer(bytes: [0xF0, 0xFF, 0xFF, 0xFF])
        #expect(throws: WireError.self) { try BatchDecoder().records(of: frame) }
    }
}
