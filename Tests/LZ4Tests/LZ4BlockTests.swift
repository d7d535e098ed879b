import LZ4
import Testing

@Suite("LZ4 block")
struct LZ4BlockTests {
    static let text = Array(String(repeating: #"{"id":1,"type":"order.created","amount":12.50,"currency":"EUR"}"#, count: 200).utf8)

    static func random(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    @Test(arguments: [[], [0x41], text, random(1), random(100_000), [UInt8](repeating: 0, count: 1 << 20)])
    func roundTrips(input: [UInt8]) throws {
        let compressor = LZ4BlockCompressor()
        let compressed = try compressor.compress(input)
        #expect(compressed.count <= LZ4Block.maximumCompressedBytes(forInputBytes: input.count))
        #expect(try LZ4Block.decompress(compressed, declaredSize: input.count, maximumBytes: input.count) == input)
    }

    @Test func compressesRepetitiveText() throws {
        let compressed = try LZ4BlockCompressor().compress(Self.text)
        #expect(compressed.count * 10 < Self.text.count)
    }

    @Test func oneCompressorServesManyCalls() throws {
        let compressor = LZ4BlockCompressor()
        let inputs = (0..<50).map { Array(Self.text.prefix($0 * 100)) + Self.random($0) }
        for input in inputs {
            let compressed = try compressor.compress(input)
            #expect(try LZ4Block.decompress(compressed, declaredSize: input.count, maximumBytes: input.count) == input)
        }
    }

    @Test func declaredSizeAboveTheLimitIsRefusedBeforeAllocating() throws {
        let compressed = try LZ4BlockCompressor().compress(Self.text)
        let error = #expect(throws: LZ4Error.self) {
            try LZ4Block.decompress(compressed, declaredSize: 1 << 40, maximumBytes: 1 << 20)
        }
        #expect(error == .declaredSizeAboveLimit(declared: 1 << 40, limit: 1 << 20))
        #expect(error?.description == "LZ4: block declares 1099511627776 decompressed bytes, above the limit of 1048576 bytes")
    }

    @Test func wrongDeclaredSizeIsRefused() throws {
        let compressed = try LZ4BlockCompressor().compress(Self.text)
        #expect(throws: LZ4Error.self) { try LZ4Block.decompress(compressed, declaredSize: Self.text.count - 1, maximumBytes: 1 << 20) }
        let error = #expect(throws: LZ4Error.self) {
            try LZ4Block.decompress(compressed, declaredSize: Self.text.count + 1, maximumBytes: 1 << 20)
        }
        #expect(error == .sizeMismatch(declared: Self.text.count + 1, actual: Self.text.count))
    }

    @Test func truncatedInputIsRefusedAtEveryLength() throws {
        let compressed = try LZ4BlockCompressor().compress(Self.text)
        for length in 0..<compressed.count {
            #expect(throws: LZ4Error.self, "truncated to \(length) bytes") {
                try LZ4Block.decompress(compressed.prefix(length), declaredSize: Self.text.count, maximumBytes: Self.text.count)
            }
        }
    }

    @Test func destinationTooSmallForTheWorstCaseIsRefused() throws {
        let input = Self.random(1000)
        var output = [UInt8](repeating: 0, count: 1000)
        let error = #expect(throws: LZ4Error.self) {
            try input.withUnsafeBytes { source in
                try output.withUnsafeMutableBytes { try LZ4BlockCompressor().compress(source, into: $0) }
            }
        }
        #expect(error == .outputTooSmall(capacity: 1000, needed: LZ4Block.maximumCompressedBytes(forInputBytes: 1000)))
    }

    /// Random and mutated blocks never crash and never write past the destination.
    @Test func corruptBlocksNeverCrash() throws {
        var generator = SystemRandomNumberGenerator()
        let valid = try LZ4BlockCompressor().compress(Self.text)
        var refused = 0
        for iteration in 0..<20_000 {
            var block: [UInt8]
            if iteration % 2 == 0 {
                block = Self.random(Int.random(in: 1...300, using: &generator))
            } else {
                block = valid
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    block[Int.random(in: 0..<block.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            let declared = Int.random(in: 0...(Self.text.count + 100), using: &generator)
            do {
                let output = try LZ4Block.decompress(block, declaredSize: declared, maximumBytes: Self.text.count + 100)
                #expect(output.count == declared)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 10_000)
    }
}
