import HeavyTestGate
import NIOCore
import PropertyBased
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Random and mutated bytes through the whole receive path: frame parser, message decoder,
/// LSN sequence and batch decoder. Nothing may crash, hang or allocate past the limits; every
/// refusal is a WireError (the typed throws make any other error a compile error).
@Suite("Wire fuzzing", .heavy)
struct WireFuzzTests {
    struct Outcomes {
        var frames = 0
        var messages = 0
        var records = 0
        var refused: [String: Int] = [:]
    }

    /// Seeds: one of every frame, valid.
    static let seeds: [[UInt8]] = {
        var seeds = TestFrames.controlMessages.map { Array(TestFrames.bytes(of: $0).readableBytesView) }
        seeds.append(Array(TestFrames.sealed(TestFrames.sampleRecords).frame.readableBytesView))
        seeds.append(Array(TestFrames.sealed(Array(TestFrames.sampleRecords.prefix(2))).frame.readableBytesView))
        return seeds
    }()

    /// A limit small enough that a fuzzed length is often above it, so that path runs too.
    static let limits = WireLimits(maximumDataFrameBodyBytes: 64 * 1024, maximumBatchBytes: 64 * 1024, maximumRecordsPerBatch: 1024, maximumPathBytes: 512)

    /// Runs the bytes through the follower's side and, behind a preamble, the leader's side.
    private func run(_ bytes: [UInt8], outcomes: inout Outcomes) {
        run(bytes, preamble: .none, outcomes: &outcomes)
        run(Array("BRPL".utf8) + [0, 1] + bytes, preamble: .expected, outcomes: &outcomes)
    }

    private func run(_ bytes: [UInt8], preamble: FrameParser.Preamble, outcomes: inout Outcomes) {
        var parser = FrameParser(limits: Self.limits, preamble: preamble)
        var sequence = LSNSequence(nextLSN: 1)
        var buffer = ByteBuffer(bytes: bytes)
        do {
            while let frame = try parser.next(from: &buffer) {
                outcomes.frames += 1
                let message = try WireMessage(decoding: frame)
                outcomes.messages += 1
                if case .data(let data) = message {
                    try sequence.accept(data)
                    outcomes.records += try BatchDecoder(limits: Self.limits).records(of: data).count
                }
            }
        } catch {
            outcomes.refused[String(describing: error.code).prefix { $0 != "(" }.description, default: 0] += 1
        }
    }

    private func mutate(_ seed: [UInt8], using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = seed
        switch Int.random(in: 0..<6, using: &generator) {
        case 0:  // flip a few bytes anywhere
            for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = .random(in: 0...255, using: &generator)
            }
        case 1:  // truncate
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
        case 2:  // insert random bytes
            let at = Int.random(in: 0...bytes.count, using: &generator)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...16, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: at)
        case 3:  // body mutated, checksum recomputed: exercises the message and batch decoders
            if bytes.count > Frame.headerBytes {
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    bytes[Int.random(in: Frame.headerBytes..<bytes.count, using: &generator)] = .random(in: 0...255, using: &generator)
                }
                bytes = Array(TestFrames.rawFrame(type: bytes[4], body: Array(bytes[Frame.headerBytes...])).readableBytesView)
            }
        case 4:  // a random length in a valid header
            if bytes.count >= 4 {
                let length = UInt32.random(in: 0...UInt32(Self.limits.maximumDataFrameBodyBytes * 2), using: &generator)
                withUnsafeBytes(of: length.bigEndian) { bytes.replaceSubrange(0..<4, with: $0) }
            }
        default:  // two frames glued together, one mutated
            bytes += Self.seeds[Int.random(in: 0..<Self.seeds.count, using: &generator)]
        }
        return bytes
    }

    /// Each case draws its shape (1 in 10 noise, half of that behind a header; else a
    /// mutated seed frame) and a seed for its bytes, so a failing case replays from its
    /// printed seed alone.
    @Test func hundredThousandRandomAndMutatedFramesNeverCrash() {
        var outcomes = Outcomes()
        let total = 100_000
        seededPropertyCheck(count: total, input: zip(Gen.int(in: 0..<20), Gen.uint64())) { drawn in
            let (shape, caseSeed) = drawn
            var generator = SplitMix(seed: caseSeed)
            let bytes: [UInt8]
            if shape < 2 {
                // Pure noise, sometimes behind a plausible header.
                var noise = (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if shape == 0, noise.count > 9 {
                    let type = FrameType.allCases.randomElement(using: &generator)!.rawValue
                    noise = Array(TestFrames.rawFrame(type: type, body: Array(noise[9...])).readableBytesView)
                }
                bytes = noise
            } else {
                bytes = mutate(Self.seeds[Int(caseSeed % UInt64(Self.seeds.count))], using: &generator)
            }
            // Never throws: a crash or a hang is the failure, and the outcomes are checked below.
            run(bytes, outcomes: &outcomes)
        }
        let refusedTotal = outcomes.refused.values.reduce(0, +)
        // Both sides must be exercised: many refusals of many kinds, and many frames that decode.
        #expect(refusedTotal > total / 2)
        // About 23% decode: a manifest entry's size fixes its checksum count, so most of its
        // mutations are refused.
        #expect(outcomes.messages > total / 5)
        #expect(outcomes.records > 1000)
        #expect(outcomes.refused.count >= 8, "refusal kinds seen: \(outcomes.refused)")
        print("fuzzed \(total) inputs: \(outcomes.frames) frames, \(outcomes.messages) messages, \(outcomes.records) records, refused \(outcomes.refused)")
    }
}
