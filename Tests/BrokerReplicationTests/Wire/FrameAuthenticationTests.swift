import NIOCore
import NIOEmbedded
import PropertyBased
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Frame authentication on a link without TLS, with no sockets: the tagger, the parser and the
/// verifier agree over every cut of a stream, and any changed, dropped, repeated or reflected
/// frame fails.
@Suite("Frame authentication")
struct FrameAuthenticationTests {
    static let secret = try! SharedSecret(bytes: Array("the cluster's shared secret, 32 b".utf8))
    static let keys = FrameAuthentication.SessionKeys(secret: secret, followerNonce: nonce(1), leaderNonce: nonce(2))

    static func nonce(_ seed: UInt8) -> [UInt8] { (0..<UInt8(handshakeTokenBytes)).map { $0 &+ seed } }

    /// What a leader sends: a challenge (untagged), then control and data frames, each written
    /// with `write(_:)` as one buffer.
    static func leaderFrames() -> [ByteBuffer] {
        let control = TestFrames.controlMessages.filter { [.challenge, .welcome, .heartbeat, .syncBegin, .syncManifest, .syncChunk, .syncEnd].contains($0.frameType) }
        var frames = control.map { TestFrames.bytes(of: $0) }
        var lsn: UInt64 = 1
        for records in [Array(TestFrames.sampleRecords.prefix(3)), Array(TestFrames.sampleRecords.suffix(5))] {
            let sealed = TestFrames.sealed(records, firstLSN: lsn)
            lsn = sealed.lastLSN + 1
            frames.append(sealed.frame)
        }
        return frames
    }

    /// The leader's frames as they leave its tagger, cut into the writes given by `cuts`.
    static func taggedStream(_ frames: [ByteBuffer], keys: FrameAuthentication.SessionKeys? = keys, cuts: [Int] = []) throws -> [UInt8] {
        var whole = ByteBuffer()
        for frame in frames { whole.writeImmutableBuffer(frame) }
        var tagger = FrameTagger(side: .leader)
        tagger.keys = keys
        var out: [UInt8] = []
        var start = 0
        for end in cuts.sorted() + [whole.readableBytes] where end >= start {
            for piece in try tagger.tag(whole.getSlice(at: start, length: end - start)!) {
                switch piece {
                case .bytes(let bytes): out += Array(bytes.readableBytesView)
                case .tag(let tag): out += tag
                }
            }
            start = end
        }
        return out
    }

    /// Parses and verifies `bytes` as a follower does; the frames that passed, or the error.
    static func receive(_ bytes: [UInt8], keys: FrameAuthentication.SessionKeys = keys, side: FrameAuthentication.Side = .follower) -> (frames: [Frame], error: WireError?) {
        var parser = FrameParser(preamble: .none, authenticatesFrames: true)
        var verifier = FrameVerifier(side: side)
        verifier.keys = keys
        var buffer = ByteBuffer(bytes: bytes)
        var frames: [Frame] = []
        do {
            while let frame = try parser.next(from: &buffer) {
                try verifier.verify(frame)
                frames.append(frame)
            }
        } catch {
            return (frames, error)
        }
        return (frames, nil)
    }

    /// The worked example of Docs/Protocol.md, section 12: an ack for LSN 42 as a follower's
    /// frame 2, tagged with keys from a known secret and nonces. The expected bytes were
    /// computed apart from this code (Python's `hmac` and `hashlib`, HKDF written out).
    @Test func theProtocolPagesWorkedExampleHoldsByteForByte() throws {
        let secret = try SharedSecret(bytes: Array("0123456789abcdef0123456789abcdef".utf8))
        let keys = FrameAuthentication.SessionKeys(secret: secret, followerNonce: Array(0..<32), leaderNonce: Array(32..<64))
        var stream = ByteBuffer()
        FrameParser.writePreamble(to: &stream)
        for message: WireMessage in [
            .hello(Hello(clusterID: "c", nodeID: "f", followerNonce: Array(0..<32))),
            .authenticate(Authenticate(followerProof: Array(repeating: 0, count: 32), epoch: 1, lastDurableLSN: 0)),
            .ack(durableLSN: 42),
        ] {
            message.write(to: &stream)
        }
        var tagger = FrameTagger(side: .follower)
        tagger.keys = keys
        let pieces = try tagger.tag(stream)
        guard case .tag(let tag) = pieces.last, case .bytes(let ack) = pieces[pieces.count - 2] else {
            Issue.record("\(pieces)")
            return
        }
        #expect(Array(ack.readableBytesView.suffix(17)) == [0x00, 0x00, 0x00, 0x08, 0x20, 0x1A, 0xAD, 0xE9, 0xFB, 0, 0, 0, 0, 0, 0, 0, 0x2A])
        #expect(tag == [0x50, 0x5E, 0xF8, 0xC2, 0xEF, 0xFD, 0xF1, 0x4A, 0x65, 0x6A, 0x9B, 0x9A, 0xCB, 0x93, 0x5F, 0x03])
    }

    @Test func everyFrameButTheFirstCarriesAVerifiedTag() throws {
        let frames = Self.leaderFrames()
        let bytes = try Self.taggedStream(frames)
        let plainBytes = frames.reduce(0) { $0 + $1.readableBytes }
        #expect(bytes.count == plainBytes + (frames.count - 1) * FrameAuthentication.tagBytes)
        let (received, error) = Self.receive(bytes)
        #expect(error == nil)
        #expect(received.map(\.type) == frames.map { FrameType(rawValue: $0.getInteger(at: 4, as: UInt8.self)!)! })
        #expect(received.first?.trailer == nil)
        #expect(received.dropFirst().allSatisfy { $0.trailer?.tag.readableBytes == FrameAuthentication.tagBytes })
    }

    /// Every split of the tagged stream on the receiving side gives the same verified frames.
    @Test func everySplitOfATaggedStreamGivesTheSameFrames() throws {
        let bytes = try Self.taggedStream(Self.leaderFrames())
        let expected = Self.receive(bytes).frames
        for split in 0...bytes.count {
            var parser = FrameParser(preamble: .none, authenticatesFrames: true)
            var verifier = FrameVerifier(side: .follower)
            verifier.keys = Self.keys
            var buffer = ByteBuffer(bytes: bytes[..<split])
            var frames: [Frame] = []
            while let frame = try parser.next(from: &buffer) { try verifier.verify(frame); frames.append(frame) }
            buffer.writeBytes(bytes[split...])
            while let frame = try parser.next(from: &buffer) { try verifier.verify(frame); frames.append(frame) }
            #expect(frames == expected, "split at \(split)")
            #expect(buffer.readableBytes == 0)
        }
    }

    /// However the writes cut the frames (every single cut, then random multi-cuts), the
    /// tagger emits the same bytes.
    @Test func theTaggerIsIndependentOfHowWritesCutTheFrames() throws {
        let frames = Self.leaderFrames()
        let expected = try Self.taggedStream(frames)
        let total = frames.reduce(0) { $0 + $1.readableBytes }
        for cut in 0...total {
            #expect(try Self.taggedStream(frames, cuts: [cut]) == expected, "cut at \(cut)")
        }
        seededPropertyCheck(count: 200, input: Gen.int(in: 0...total).array(of: 2...40)) { cuts in
            try #require(try Self.taggedStream(frames, cuts: cuts) == expected, "cuts \(cuts)")
        }
    }

    /// A changed byte anywhere after the first frame fails: in a body or a tag it fails
    /// authentication; in a length or type byte the header checks may refuse it first.
    /// Nothing from the changed frame on is passed on.
    @Test func anyChangedByteAfterTheFirstFrameIsRefused() throws {
        let frames = Self.leaderFrames()
        let bytes = try Self.taggedStream(frames)
        let firstFrameBytes = frames[0].readableBytes
        var authenticationFailures = 0
        for index in firstFrameBytes..<bytes.count {
            var changed = bytes
            changed[index] ^= 0x01
            let (received, error) = Self.receive(changed)
            let frameIndex = received.count
            #expect(frameIndex < frames.count, "byte \(index) changed, yet every frame passed")
            // A frame that is cut short (its length grew) shows as no error and fewer frames.
            if let error, case .authenticationFailed = error.code { authenticationFailures += 1 }
        }
        // Only the 4 length and 1 type bytes of each frame can fail otherwise.
        #expect(authenticationFailures >= bytes.count - firstFrameBytes - 5 * frames.count)
    }

    @Test func aDroppedRepeatedOrSwappedFrameFailsAuthentication() throws {
        let frames = Self.leaderFrames()
        let tagged = try Self.taggedStream(frames)
        // Cut the tagged stream back into its frames: each with its tag, but the first.
        var pieces: [[UInt8]] = []
        var offset = 0
        for (index, frame) in frames.enumerated() {
            let length = frame.readableBytes + (index == 0 ? 0 : FrameAuthentication.tagBytes)
            pieces.append(Array(tagged[offset..<(offset + length)]))
            offset += length
        }
        let dropped = pieces[0] + pieces[1] + pieces[3...].joined()
        let repeated = pieces[0] + pieces[1] + pieces[1] + pieces[2...].joined()
        let swapped = pieces[0] + pieces[2] + pieces[1] + pieces[3...].joined()
        // The position in the stream is in every tag: the first frame out of place fails.
        for (name, stream, failsAt) in [("dropped", dropped, 2), ("repeated", repeated, 2), ("swapped", swapped, 1)] {
            let (received, error) = Self.receive(Array(stream))
            #expect(received.count == failsAt, "\(name)")
            guard case .authenticationFailed(_, let sequence) = error?.code else {
                Issue.record("\(name): \(String(describing: error))")
                continue
            }
            #expect(sequence == UInt64(failsAt), "\(name)")
        }
    }

    @Test func aFrameIsNotAcceptedFromTheOtherDirectionOrAnotherConnection() throws {
        let bytes = try Self.taggedStream(Self.leaderFrames())
        // Reflected: the leader's own frames read back as if a follower had sent them.
        let reflected = Self.receive(bytes, side: .leader)
        #expect(reflected.error?.code == .authenticationFailed(type: .welcome, sequence: 1))
        // Replayed on another connection: other nonces, other keys.
        let other = FrameAuthentication.SessionKeys(secret: Self.secret, followerNonce: Self.nonce(3), leaderNonce: Self.nonce(2))
        #expect(Self.receive(bytes, keys: other).error?.code == .authenticationFailed(type: .welcome, sequence: 1))
        // Another secret.
        let otherSecret = try SharedSecret(bytes: Array("not the cluster's secret at all!!".utf8))
        let wrong = FrameAuthentication.SessionKeys(secret: otherSecret, followerNonce: Self.nonce(1), leaderNonce: Self.nonce(2))
        #expect(Self.receive(bytes, keys: wrong).error?.code == .authenticationFailed(type: .welcome, sequence: 1))
    }

    @Test func aSecondFrameBeforeTheKeysIsRefusedOnBothSides() throws {
        #expect(throws: WireError.self) { try Self.taggedStream(Self.leaderFrames(), keys: nil) }
        var parser = FrameParser(preamble: .none, authenticatesFrames: true)
        var verifier = FrameVerifier(side: .follower)
        var buffer = ByteBuffer(bytes: try Self.taggedStream(Self.leaderFrames()))
        try verifier.verify(#require(try parser.next(from: &buffer)))
        let second = try #require(try parser.next(from: &buffer))
        #expect(throws: WireError.self) { try verifier.verify(second) }
    }

    /// In a pipeline: a frame that fails is never passed on, and the error reaches the link.
    @Test func theHandlerPassesNothingOfAFailedFrame() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(preamble: .none, authenticatesFrames: true)))
        try channel.pipeline.syncOperations.addHandler(FrameAuthenticationHandler(side: .follower))
        try channel.pipeline.triggerUserOutboundEvent(FrameAuthenticationHandler.Start(keys: Self.keys)).wait()
        var bytes = try Self.taggedStream(Self.leaderFrames())
        bytes[bytes.count - 30] ^= 0xFF  // inside the last data frame's body
        #expect(throws: WireError.self) { try channel.writeInbound(ByteBuffer(bytes: bytes)) }
        var passed: [Frame] = []
        while let frame = try channel.readInbound(as: Frame.self) { passed.append(frame) }
        // Every frame but the last, the changed one.
        #expect(passed.count == Self.leaderFrames().count - 1)
        _ = try? channel.finish()
    }
}
