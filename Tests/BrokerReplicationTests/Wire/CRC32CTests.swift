import PropertyBased
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("CRC32C")
struct CRC32CTests {
    /// Published check values of CRC-32C (RFC 3720 appendix B.4 and the common "123456789").
    static let checkValues: [([UInt8], UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0..<32), 0x46DD_794E),
        ([], 0),
    ]

    @Test(arguments: checkValues)
    func knownValues(bytes: [UInt8], expected: UInt32) {
        #expect(bytes.withUnsafeBytes { CRC32C.checksum($0) } == expected)
    }

    /// The hardware path (SSE4.2) and the software tables agree at every length and alignment.
    @Test func hardwareAndSoftwareAgree() {
        seededPropertyCheck(count: 8, input: Gen.uint8().array(of: 4_200)) { bytes in
            try bytes.withUnsafeBytes { all in
                for start in 0..<9 {
                    for length in [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1_000, 4_096] {
                        let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                        try #require(CRC32C.update(CRC32C.start, with: slice) == CRC32C.softwareUpdate(CRC32C.start, with: slice), "start \(start), length \(length)")
                    }
                }
            }
        }
        print("CRC32C uses the processor's instruction: \(CRC32C.usesHardware)")
    }

    @Test func incrementalMatchesOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let oneShot = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            var running = bytes[..<split].withUnsafeBytes { CRC32C.update(CRC32C.start, with: $0) }
            running = bytes[split...].withUnsafeBytes { CRC32C.update(running, with: $0) }
            #expect(CRC32C.finish(running) == oneShot, "split at \(split)")
        }
    }
}
