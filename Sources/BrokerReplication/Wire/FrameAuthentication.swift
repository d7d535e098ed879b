import Crypto
import Foundation
import NIOCore

/// Frame authentication on a link without TLS (Docs/Protocol.md, "Frame authentication").
///
/// The handshake proves that both ends hold the shared secret; this keeps proving it for
/// every later frame, so a machine on the path can neither forge an ack (a confirm for data
/// no follower holds) nor inject or replay a record. Each direction has its own key, derived
/// from the secret and both handshake nonces, and every frame after a side's first carries a
/// tag over its position in the stream, its header and its body. A TLS link skips this: TLS
/// authenticates every byte already.
enum FrameAuthentication {
    /// The tag's length: HMAC-SHA256 truncated to 128 bits, as IPsec and TLS 1.2 truncate theirs.
    static let tagBytes = 16

    /// Which end of the link a key or a tagger belongs to.
    enum Side: Sendable {
        case leader
        case follower
    }

    /// One connection's two keys, one per direction, so a frame cannot be reflected back to
    /// its sender.
    struct SessionKeys: Sendable {
        let leaderToFollower: SymmetricKey
        let followerToLeader: SymmetricKey

        /// HKDF-SHA256 with the secret as input key material, the follower's nonce then the
        /// leader's as salt, and a label per direction as info. Fresh nonces on both sides make
        /// every connection's keys new, so nothing recorded on one connection verifies on another.
        init(secret: SharedSecret, followerNonce: [UInt8], leaderNonce: [UInt8]) {
            let salt = followerNonce + leaderNonce
            leaderToFollower = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: secret.key, salt: salt, info: Array("BRPL/3 leader-to-follower frames".utf8), outputByteCount: 32
            )
            followerToLeader = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: secret.key, salt: salt, info: Array("BRPL/3 follower-to-leader frames".utf8), outputByteCount: 32
            )
        }

        func sending(from side: Side) -> SymmetricKey { side == .leader ? leaderToFollower : followerToLeader }
        func receiving(at side: Side) -> SymmetricKey { side == .leader ? followerToLeader : leaderToFollower }
    }

    /// A running tag: HMAC-SHA256 over the frame's sequence number (`u64`), its 9 header bytes
    /// and its body, fed in pieces as the bytes pass.
    struct RunningTag {
        private var hmac: HMAC<SHA256>

        init(key: SymmetricKey, sequence: UInt64) {
            hmac = HMAC<SHA256>(key: key)
            withUnsafeBytes(of: sequence.bigEndian) { hmac.update(data: $0) }
        }

        mutating func update(_ bytes: ByteBuffer) {
            bytes.withUnsafeReadableBytes { hmac.update(data: $0) }
        }

        mutating func update(_ bytes: [UInt8]) {
            hmac.update(data: bytes)
        }

        /// The first ``tagBytes`` bytes of the HMAC.
        func finish() -> [UInt8] {
            Array(hmac.finalize().prefix(tagBytes))
        }
    }

    /// Checks a received frame's tag in constant time.
    static func isValid(_ frame: Frame, trailer: Frame.Trailer, sequence: UInt64, key: SymmetricKey) -> Bool {
        var running = RunningTag(key: key, sequence: sequence)
        var header = ByteBuffer()
        header.reserveCapacity(Frame.headerBytes)
        header.writeInteger(UInt32(frame.body.readableBytes))
        header.writeInteger(frame.type.rawValue)
        header.writeInteger(trailer.checksum)
        running.update(header)
        running.update(frame.body)
        let expected = running.finish()
        guard trailer.tag.readableBytes == tagBytes else { return false }
        var difference: UInt8 = 0
        for (index, byte) in trailer.tag.readableBytesView.enumerated() { difference |= byte ^ expected[index] }
        return difference == 0
    }
}

/// Appends a tag after every frame but a side's first, whatever the cut of the writes that
/// carry the frames: a pure state machine that ``FrameAuthenticationHandler`` and the tests'
/// raw follower share.
///
/// Frames reach the socket from several writers (the stream, the liveness handler's
/// heartbeats, the full sync), so tags are added where their order is final: the last
/// outbound step before the socket.
struct FrameTagger {
    /// What a write becomes: its own bytes, cut where a frame ends, with the tags between.
    enum Piece: Equatable {
        case bytes(ByteBuffer)
        case tag([UInt8])
    }

    let side: FrameAuthentication.Side
    /// Set once the handshake has the nonces; a frame that needs a tag before it is a defect.
    var keys: FrameAuthentication.SessionKeys?

    private var preambleBytesLeft: Int
    private var header: [UInt8] = []
    private var bodyBytesLeft = 0
    private var running: FrameAuthentication.RunningTag?
    /// The position of the frame being written, counting from 0.
    private(set) var sequence: UInt64 = 0

    /// - Parameter side: the side that writes; a follower's stream starts with the preamble.
    init(side: FrameAuthentication.Side) {
        self.side = side
        self.preambleBytesLeft = side == .follower ? FrameParser.preambleBytes : 0
    }

    /// Cuts `buffer` at frame ends and puts each finished frame's tag after it.
    mutating func tag(_ buffer: ByteBuffer) throws(WireError) -> [Piece] {
        var pieces: [Piece] = []
        var remaining = buffer
        // The bytes since the last tag, passed on as one slice.
        var passing = remaining.readerIndex
        func flushPassing(upTo index: Int) {
            if index > passing { pieces.append(.bytes(buffer.getSlice(at: passing, length: index - passing)!)) }
            passing = index
        }
        while remaining.readableBytes > 0 {
            if preambleBytesLeft > 0 {
                let count = min(preambleBytesLeft, remaining.readableBytes)
                preambleBytesLeft -= count
                remaining.moveReaderIndex(forwardBy: count)
            } else if header.count < Frame.headerBytes {
                let count = min(Frame.headerBytes - header.count, remaining.readableBytes)
                header += remaining.readBytes(length: count)!
                if header.count == Frame.headerBytes { try startBody() }
            } else {
                let count = min(bodyBytesLeft, remaining.readableBytes)
                let body = remaining.readSlice(length: count)!
                running?.update(body)
                bodyBytesLeft -= count
            }
            if header.count == Frame.headerBytes, bodyBytesLeft == 0 {
                flushPassing(upTo: remaining.readerIndex)
                if let running { pieces.append(.tag(running.finish())) }
                running = nil
                header.removeAll(keepingCapacity: true)
                sequence += 1
            }
        }
        flushPassing(upTo: remaining.readerIndex)
        return pieces
    }

    private mutating func startBody() throws(WireError) {
        bodyBytesLeft = Int(UInt32(header[0]) << 24 | UInt32(header[1]) << 16 | UInt32(header[2]) << 8 | UInt32(header[3]))
        guard sequence > 0 else { return }  // A side's first frame goes before the keys exist.
        guard let keys else {
            throw WireError(.malformedFrame(type: FrameType(rawValue: header[4]) ?? .refusal, reason: "frame \(sequence) needs a tag, but the handshake has set no keys"))
        }
        var running = FrameAuthentication.RunningTag(key: keys.sending(from: side), sequence: sequence)
        running.update(header)
        self.running = running
    }
}
