import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Control messages")
struct ControlMessageTests {
    @Test(arguments: TestFrames.controlMessages)
    func roundTrips(message: WireMessage) throws {
        var bytes = ByteBuffer()
        let fromLeader = message.frameType.isSentByLeader
        if !fromLeader { FrameParser.writePreamble(to: &bytes) }
        bytes.writeImmutableBuffer(TestFrames.bytes(of: message))
        var parser = FrameParser(preamble: fromLeader ? .none : .expected)
        let frame = try #require(try parser.next(from: &bytes))
        #expect(frame.type == message.frameType)
        #expect(try WireMessage(decoding: frame) == message)
        #expect(bytes.readableBytes == 0)
    }

    @Test func ackHasTheDocumentedBytes() {
        // The worked example in Docs/Protocol.md: length 8, type 0x20, CRC32C, LSN 42.
        let bytes = Array(TestFrames.bytes(of: .ack(durableLSN: 42)).readableBytesView)
        #expect(bytes.count == 17)
        #expect(bytes[0..<5] == [0, 0, 0, 8, 0x20])
        #expect(bytes[9...] == [0, 0, 0, 0, 0, 0, 0, 42])
    }

    @Test func overlongRefusalReasonIsCutNotRefused() throws {
        let reason = String(repeating: "é", count: 1000)  // 2000 bytes of UTF-8
        var bytes = TestFrames.bytes(of: .refusal(Refusal(code: .wrongCluster, reason: reason)))
        var parser = FrameParser(preamble: .none)
        guard case .refusal(let refusal) = try WireMessage(decoding: try #require(try parser.next(from: &bytes))) else {
            Issue.record("not a refusal")
            return
        }
        #expect(refusal.reason.utf8.count <= Refusal.maximumReasonBytes)
        #expect(reason.hasPrefix(refusal.reason))
    }

    static let malformedBodies: [(type: FrameType, body: [UInt8], reason: String)] = [
        (.ack, [0, 0, 0, 0, 0, 0, 0], "durable LSN needs 8 bytes, 7 left"),
        (.ack, [0, 0, 0, 0, 0, 0, 0, 1, 9], "1 unexpected bytes after the last field"),
        (.hello, [0], "cluster id is empty"),
        (.hello, [3, 0x61, 0xFF, 0x62], "cluster id is not valid UTF-8"),
        (.hello, [1, 0x61, 1, 0x62] + [UInt8](repeating: 0, count: 31), "follower nonce needs 32 bytes, 31 left"),
        (.hello, [5, 0x61], "cluster id needs 5 bytes, 1 left"),
        (.welcome, [0, 0, 0, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0, 1], "unknown resync mode 9"),
        (.refusal, [3, 0x04, 0x01], "reason of 1025 bytes is above the limit of 1024 bytes"),
        (.data, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0], "first LSN is 0"),
        (.data, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0], "record count is 0"),
        (.data, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0, 0, 0, 8, 1, 0], "LSN range overflows"),
        (.data, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 1], "no compressed payload"),
        (.data, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 2, 0], "unknown codec 2"),
        (.heartbeatReply, [1, 2, 3], "echoed sent-at time needs 8 bytes, 3 left"),
    ]

    @Test(arguments: malformedBodies)
    func refusesMalformedBodies(type: FrameType, body: [UInt8], reason: String) throws {
        let error = #expect(throws: WireError.self) {
            try WireMessage(decoding: Frame(type: type, body: ByteBuffer(bytes: body)))
        }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error)) should mention \(reason)")
    }
}
