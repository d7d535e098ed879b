import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// One libFuzzer target per entry point a peer's bytes reach, and the properties each asserts.
///
/// These files are compiled twice: into the fuzz package (Tests/Fuzz, built with the
/// sanitizers by `make fuzz`) and into the unit tests, which run every target over its
/// committed corpus (`FuzzCorpusTests`). So an input that once broke a property stays a test.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The leader reading a follower's stream: preamble, frames, messages.
    case frameLeader = "frame-leader"
    /// The follower reading a leader's stream: frames, messages, batches.
    case frameFollower = "frame-follower"
    /// Both handshake state machines fed the messages of a byte stream.
    case handshake
    /// A data frame's body through the batch and record decoder.
    case batch
    /// A relative path through the validator.
    case path
    /// A sync manifest frame's body through its decoder.
    case syncManifest = "sync-manifest"

    /// Checks this target's properties on one input; a broken property throws.
    public func check(_ input: [UInt8]) throws(FuzzViolation) {
        switch self {
        case .frameLeader: try FrameChecks.check(input, leaderSide: true)
        case .frameFollower: try FrameChecks.check(input, leaderSide: false)
        case .handshake: try HandshakeChecks.check(input)
        case .batch: try BatchChecks.check(input)
        case .path: try PathChecks.check(input)
        case .syncManifest: try SyncManifestChecks.check(input)
        }
    }

    /// libFuzzer's `LLVMFuzzerTestOneInput`: a broken property must crash, since a crash is
    /// what libFuzzer records (with the input that caused it).
    public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
        let input = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
        do {
            try check(input)
        } catch {
            fatalError("fuzz target \(rawValue): \(error)")
        }
        return 0
    }
}

/// A property that an input broke, said in words.
public struct FuzzViolation: Error, CustomStringConvertible {
    public let description: String
}

/// Throws `message` when `condition` is false.
func ensure(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition { throw FuzzViolation(description: message()) }
}

/// The bounds every target decodes with: far below the defaults, so that a fuzzed length is
/// often above them and the refusals run too. `make fuzz` adds `-malloc_limit_mb=2`, twice the
/// largest of them, so an allocation that a length from the network sized past its bound crashes.
let fuzzLimits = WireLimits(
    maximumDataFrameBodyBytes: 256 * 1024,
    maximumBatchBytes: 1024 * 1024,
    maximumRecordsPerBatch: 4096,
    maximumPathBytes: 512
)

/// The handshake's identities; the seed corpus holds a valid handshake for them.
enum FuzzIdentities {
    static let secret = try! SharedSecret(bytes: Array("fuzzing-only shared secret".utf8))
    static let clusterID = "orders-eu"
    static let leaderNodeID = "leader-0"
    static let followerNodeID = "follower-1"
    static let leaderNonce = [UInt8](repeating: 0x4C, count: handshakeTokenBytes)
    static let followerNonce = [UInt8](repeating: 0x46, count: handshakeTokenBytes)
    static let keys = FrameAuthentication.SessionKeys(secret: secret, followerNonce: followerNonce, leaderNonce: leaderNonce)
}

extension WireMessage {
    /// Checks that this message, encoded, is one frame that decodes back to it.
    func ensureRoundTrip() throws(FuzzViolation) {
        var bytes = ByteBuffer()
        write(to: &bytes)
        let body = bytes.getSlice(at: Frame.headerBytes, length: bytes.readableBytes - Frame.headerBytes)!
        let decoded: WireMessage
        do {
            decoded = try WireMessage(decoding: Frame(type: frameType, body: body), limits: fuzzLimits)
        } catch {
            throw FuzzViolation(description: "\(frameType) that this side built does not decode: \(error)")
        }
        try ensure(decoded == self, "\(frameType) decodes to \(decoded), built as \(self)")
    }
}
