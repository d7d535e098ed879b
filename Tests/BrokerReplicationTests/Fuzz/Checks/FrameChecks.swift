import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// The frame parser and the message decoder over a byte stream, as one side of a link reads it.
enum FrameChecks {
    /// Reads `input` as the leader (`leaderSide`) or the follower does, on a TLS link (every
    /// frame checksummed) and on a link without TLS (every frame after the first tagged).
    static func check(_ input: [UInt8], leaderSide: Bool) throws(FuzzViolation) {
        try check(input, leaderSide: leaderSide, authenticatesFrames: false)
        try check(input, leaderSide: leaderSide, authenticatesFrames: true)
    }

    private static func check(_ input: [UInt8], leaderSide: Bool, authenticatesFrames: Bool) throws(FuzzViolation) {
        var parser = FrameParser(limits: fuzzLimits, preamble: leaderSide ? .expected : .none, authenticatesFrames: authenticatesFrames)
        var verifier = FrameVerifier(side: leaderSide ? .leader : .follower)
        verifier.keys = FuzzIdentities.keys
        var buffer = ByteBuffer(bytes: input)
        var preambleBytes = leaderSide ? FrameParser.preambleBytes : 0
        var framesRead = 0
        while true {
            let start = buffer.readerIndex
            let parsed: Frame?
            do {
                parsed = try parser.next(from: &buffer)
            } catch {
                return  // The link closes: nothing after a refused frame is read.
            }
            guard let frame = parsed else {
                // The preamble is taken as soon as it is whole; of a partial frame, nothing.
                let consumed = buffer.readerIndex - start
                try ensure(consumed == 0 || consumed == preambleBytes, "a partial frame consumed \(consumed) bytes")
                return
            }
            // The buffer's indices are the input's: nothing before the reader index is readable.
            let frameBytes = ByteBuffer(bytes: input[(start + preambleBytes)..<buffer.readerIndex])
            preambleBytes = 0
            try checkFrame(frame, bytes: frameBytes, tagged: authenticatesFrames && framesRead > 0, leaderSide: leaderSide)
            framesRead += 1
            if authenticatesFrames, (try? verifier.verify(frame)) == nil { return }
            guard let message = try? WireMessage(decoding: frame, limits: fuzzLimits) else { return }
            try checkMessage(message, of: frame)
        }
    }

    /// The frame is exactly the bytes it was cut from, and within what its side and type allow.
    private static func checkFrame(_ frame: Frame, bytes: ByteBuffer, tagged: Bool, leaderSide: Bool) throws(FuzzViolation) {
        try ensure(leaderSide ? frame.type.isSentByFollower : frame.type.isSentByLeader, "\(frame.type) accepted from the wrong side")
        let limit = frame.type.maximumBodyBytes(fuzzLimits)
        try ensure(frame.body.readableBytes <= limit, "\(frame.type) body of \(frame.body.readableBytes) bytes, above \(limit)")
        try ensure((frame.trailer != nil) == tagged, "\(frame.type): trailer \(frame.trailer == nil ? "missing" : "unexpected")")
        var rewritten = ByteBuffer()
        Frame(type: frame.type, body: frame.body).write(to: &rewritten)
        if let trailer = frame.trailer {
            // A tagged frame's checksum is the tag's to check, so it is compared, not recomputed.
            try ensure(trailer.tag.readableBytes == FrameAuthentication.tagBytes, "tag of \(trailer.tag.readableBytes) bytes")
            rewritten.setInteger(trailer.checksum, at: rewritten.readerIndex + 5)
            rewritten.writeImmutableBuffer(trailer.tag)
        }
        try ensure(rewritten == bytes, "\(frame.type) frame re-encodes to other bytes than it was read from")
    }

    /// The message re-encodes to the frame's body, and a data frame's batch keeps its properties.
    private static func checkMessage(_ message: WireMessage, of frame: Frame) throws(FuzzViolation) {
        try ensure(message.frameType == frame.type, "\(frame.type) frame decoded as \(message.frameType)")
        var encoded = ByteBuffer()
        message.write(to: &encoded)
        let body = encoded.getSlice(at: Frame.headerBytes, length: encoded.readableBytes - Frame.headerBytes)!
        try ensure(body == frame.body, "\(frame.type) message re-encodes to another body")
        switch message {
        case .data(let data): _ = try BatchChecks.check(data)
        case .syncManifest(_, let entries): try SyncManifestChecks.check(entries)
        default: break
        }
    }
}
