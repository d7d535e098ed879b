import NIOCore
import NIOEmbedded
import PropertyBased
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Frame parser")
struct FrameParserTests {
    /// A stream as a leader receives it: preamble, then one frame of every follower message.
    static func followerStream() -> (bytes: [UInt8], frames: [Frame]) {
        var buffer = ByteBuffer()
        FrameParser.writePreamble(to: &buffer)
        let messages: [WireMessage] = TestFrames.controlMessages.filter {
            [.hello, .authenticate, .ack, .heartbeatReply, .refusal, .syncRequest].contains($0.frameType)
        }
        return (Array(buffer.readableBytesView) + messages.flatMap { Array(TestFrames.bytes(of: $0).readableBytesView) }, frames(of: messages))
    }

    /// A stream as a follower receives it: control frames and several data frames.
    static func leaderStream() -> (bytes: [UInt8], frames: [Frame]) {
        var bytes: [UInt8] = []
        var expected: [Frame] = []
        let control = TestFrames.controlMessages.filter { [.challenge, .welcome, .heartbeat, .syncBegin, .syncManifest, .syncChunk, .syncEnd].contains($0.frameType) }
        bytes += control.flatMap { Array(TestFrames.bytes(of: $0).readableBytesView) }
        expected += frames(of: control)
        var lsn: UInt64 = 1
        for records in [Array(TestFrames.sampleRecords.prefix(3)), Array(TestFrames.sampleRecords.suffix(5))] {
            let sealed = TestFrames.sealed(records, firstLSN: lsn)
            lsn = sealed.lastLSN + 1
            bytes += Array(sealed.frame.readableBytesView)
            let frame = sealed.frame
            expected.append(Frame(type: .data, body: frame.getSlice(at: Frame.headerBytes, length: frame.readableBytes - Frame.headerBytes)!))
        }
        return (bytes, expected)
    }

    private static func frames(of messages: [WireMessage]) -> [Frame] {
        messages.map {
            let bytes = TestFrames.bytes(of: $0)
            return Frame(type: $0.frameType, body: bytes.getSlice(at: Frame.headerBytes, length: bytes.readableBytes - Frame.headerBytes)!)
        }
    }

    /// Feeds `chunks` through the NIO decoder in a channel and returns what came out.
    private func decode(_ chunks: [ArraySlice<UInt8>], preamble: FrameParser.Preamble) throws -> [Frame] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(preamble: preamble)))
        defer { _ = try? channel.finish() }
        var frames: [Frame] = []
        for chunk in chunks {
            try channel.writeInbound(ByteBuffer(bytes: chunk))
            while let frame = try channel.readInbound(as: Frame.self) { frames.append(frame) }
        }
        return frames
    }

    /// Every single split point, byte by byte, and random multi-splits give the same frames
    /// (the check swift-nio's ByteToMessageDecoderVerifier makes).
    @Test(arguments: [FrameParser.Preamble.expected, .none])
    func everySplitGivesTheSameFrames(preamble: FrameParser.Preamble) throws {
        let (bytes, expected) = preamble == .expected ? Self.followerStream() : Self.leaderStream()
        #expect(try decode([bytes[...]], preamble: preamble) == expected)
        for split in 1..<bytes.count {
            let frames = try decode([bytes[..<split], bytes[split...]], preamble: preamble)
            #expect(frames == expected, "split at byte \(split)")
            if frames != expected { return }
        }
        #expect(try decode(bytes.indices.map { bytes[$0...$0] }, preamble: preamble) == expected)
        seededPropertyCheck(count: 200, input: Gen.int(in: 1..<bytes.count).array(of: 2...12)) { drawn in
            let cuts = Array(Set(drawn)).sorted()
            let bounds = [0] + cuts + [bytes.count]
            let chunks = zip(bounds, bounds.dropFirst()).map { bytes[$0..<$1] }
            try #require(try decode(chunks, preamble: preamble) == expected, "cuts at \(cuts)")
        }
    }

    @Test func waitsForTheWholeFrameWithoutConsuming() throws {
        let whole = TestFrames.bytes(of: .heartbeat(Heartbeat(leaderLSN: 7, sentAtNanoseconds: 8)))
        var parser = FrameParser(preamble: .none)
        for length in 0..<whole.readableBytes {
            var partial = whole.getSlice(at: 0, length: length)!
            #expect(try parser.next(from: &partial) == nil)
            #expect(partial.readableBytes == length)
        }
    }

    @Test func refusesWrongMagicAsSoonAsItArrives() {
        var parser = FrameParser(preamble: .expected)
        var http = ByteBuffer(string: "G")
        let error = #expect(throws: WireError.self) { try parser.next(from: &http) }
        #expect(error?.description.contains("not a BrokerReplication peer") == true)
    }

    @Test func refusesAnUnsupportedVersionWithBothVersions() {
        var parser = FrameParser(preamble: .expected)
        var buffer = ByteBuffer()
        FrameParser.writePreamble(to: &buffer, version: 2)
        let error = #expect(throws: WireError.self) { try parser.next(from: &buffer) }
        #expect(error?.code == .unsupportedProtocolVersion(received: 2, supported: 3), "version 2 had no frame authentication")
    }

    /// A would-be follower cannot make the leader buffer a data frame (up to 9 MiB) before it
    /// has authenticated: the leader's side refuses every type only leaders send.
    @Test(arguments: FrameType.allCases)
    func eachSideRefusesFramesOnlyItsOwnRoleSends(type: FrameType) throws {
        var header = ByteBuffer()
        header.writeInteger(UInt32(WireLimits.default.maximumDataFrameBodyBytes))
        header.writeInteger(type.rawValue)
        var leaderSide = FrameParser(preamble: .expected)
        var fromFollower = ByteBuffer()
        FrameParser.writePreamble(to: &fromFollower)
        fromFollower.writeImmutableBuffer(header)
        var followerSide = FrameParser(preamble: .none)
        var fromLeader = header
        if type.isSentByFollower {
            // Control-sized types: the 9 MiB length is refused as too large instead.
            #expect(throws: WireError.self) { try leaderSide.next(from: &fromFollower) }
        } else {
            let error = #expect(throws: WireError.self) { try leaderSide.next(from: &fromFollower) }
            #expect(error?.code == .unexpectedFrame(type: type, state: "reading from a follower"))
        }
        if type.isSentByLeader {
            if type.maximumBodyBytes(.default) >= WireLimits.default.maximumDataFrameBodyBytes {
                #expect(try followerSide.next(from: &fromLeader) == nil, "waits for the body")
            }
        } else {
            let error = #expect(throws: WireError.self) { try followerSide.next(from: &fromLeader) }
            #expect(error?.code == .unexpectedFrame(type: type, state: "reading from a leader"))
        }
    }

    @Test func refusesUnknownTypeFromTheHeaderAlone() {
        var parser = FrameParser(preamble: .none)
        var buffer = ByteBuffer(bytes: [0, 0, 0, 1, 0x7E])
        let error = #expect(throws: WireError.self) { try parser.next(from: &buffer) }
        #expect(error?.code == .unknownFrameType(0x7E))
    }

    /// The length is refused from the five header bytes, before any body byte is awaited.
    @Test(arguments: [
        (FrameType.heartbeat, UInt32(WireLimits.maximumControlFrameBodyBytes + 1), WireLimits.maximumControlFrameBodyBytes),
        (.welcome, UInt32.max, WireLimits.maximumControlFrameBodyBytes),
        (.data, UInt32(WireLimits.default.maximumDataFrameBodyBytes + 1), WireLimits.default.maximumDataFrameBodyBytes),
    ])
    func refusesOversizedFramesBeforeTheBody(type: FrameType, length: UInt32, limit: Int) {
        var parser = FrameParser(preamble: .none)
        var buffer = ByteBuffer()
        buffer.writeInteger(length)
        buffer.writeInteger(type.rawValue)
        let error = #expect(throws: WireError.self) { try parser.next(from: &buffer) }
        #expect(error?.code == .frameTooLarge(type: type, bodyBytes: Int(length), limit: limit))
    }

    @Test func refusesEveryCorruptedByteOfAFrame() throws {
        let frame = Array(TestFrames.sealed(TestFrames.sampleRecords).frame.readableBytesView)
        // Length and type bytes: corrupting them gives another error or waits for more
        // bytes; from the checksum on, every flipped bit must be caught by the checksum.
        for index in 5..<frame.count {
            for bit in [0, 3, 7] {
                var corrupted = frame
                corrupted[index] ^= UInt8(1 << bit)
                var buffer = ByteBuffer(bytes: corrupted)
                var parser = FrameParser(preamble: .none)
                let error = #expect(throws: WireError.self, "byte \(index) bit \(bit)") { try parser.next(from: &buffer) }
                guard case .checksumMismatch(type: .data, _, _) = error?.code else {
                    Issue.record("byte \(index): \(String(describing: error))")
                    return
                }
            }
        }
    }

    @Test func decoderChannelReportsTheErrorAndStops() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(preamble: .none)))
        var bytes = TestFrames.bytes(of: .syncEnd(cutLSN: 1))
        bytes.setInteger(UInt8(0xFF), at: bytes.writerIndex - 1)
        #expect(throws: WireError.self) { try channel.writeInbound(bytes) }
        _ = try? channel.finish()
    }
}
