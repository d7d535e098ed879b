import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// The seed corpus: real traffic, built with the real encoders, for every fuzz target.
enum FuzzSeeds {
    /// Named inputs for `target`; names are file names in Tests/Fuzz/corpus/<target>/.
    static func seeds(for target: FuzzTarget) -> [(String, [UInt8])] {
        switch target {
        case .frameLeader:
            streams(sentBy: .follower) + messages(where: \.isSentByFollower).map { ($0, preamble + $1) }
        case .frameFollower:
            streams(sentBy: .leader) + messages(where: \.isSentByLeader) + batches.map { ($0, Array($1.frame.readableBytesView)) }
        case .handshake:
            streams(sentBy: .follower).prefix(1) + streams(sentBy: .leader).prefix(1)
                + [("refusal", bytes(.refusal(Refusal(code: .wrongCluster, reason: "no"))))]
        case .batch:
            batches.flatMap { name, sealed in
                let body = Array(sealed.frame.readableBytesView.dropFirst(Frame.headerBytes))
                var payload = ByteBuffer(bytes: body.prefix(DataFrame.headerBytes))
                for record in records(of: name) { record.write(to: &payload) }
                return [(name, body), ("\(name)-uncompressed", Array(payload.readableBytesView))]
            }
        case .path:
            ["queues/orders/segment.0001", "definitions.json", "köer/beställningar/segment", "../escape", ".brpl/state", "a//b", "a/./b"]
                .map { ($0.replacingOccurrences(of: "/", with: "_"), Array($0.utf8)) }
        case .syncManifest:
            messages(where: { $0 == .syncManifest }).map { ($0, Array($1.dropFirst(Frame.headerBytes))) }
        }
    }

    private static let preamble: [UInt8] = Array("BRPL".utf8) + withUnsafeBytes(of: replicationProtocolVersion.bigEndian, Array.init)

    private static func bytes(_ message: WireMessage) -> [UInt8] {
        Array(TestFrames.bytes(of: message).readableBytesView)
    }

    /// Every control message of `TestFrames` whose type passes `include`, one frame each.
    private static func messages(where include: (FrameType) -> Bool) -> [(String, [UInt8])] {
        TestFrames.controlMessages.enumerated()
            .filter { include($0.element.frameType) }
            .map { ("\($0.element.frameType)-\($0.offset)", bytes($0.element)) }
    }

    private static let batches: [(String, SealedBatch)] = [
        ("batch-all-kinds", TestFrames.sealed(TestFrames.sampleRecords)),
        ("batch-two", TestFrames.sealed(Array(TestFrames.sampleRecords.prefix(2)), firstLSN: 9)),
    ]

    private static func records(of batch: String) -> [ReplicationRecord] {
        batch == "batch-two" ? Array(TestFrames.sampleRecords.prefix(2)) : TestFrames.sampleRecords
    }

    /// A whole connection from one side, with valid proofs for FuzzIdentities, plain (a TLS
    /// link) and with every frame after the first tagged (a link without TLS).
    private static func streams(sentBy side: FrameAuthentication.Side) -> [(String, [UInt8])] {
        let hello = Hello(clusterID: FuzzIdentities.clusterID, nodeID: FuzzIdentities.followerNodeID, followerNonce: FuzzIdentities.followerNonce)
        func proof(_ role: HandshakeProof.Role) -> [UInt8] {
            HandshakeProof.proof(
                role: role, secret: FuzzIdentities.secret, clusterID: FuzzIdentities.clusterID, leaderNodeID: FuzzIdentities.leaderNodeID,
                followerNodeID: FuzzIdentities.followerNodeID, followerNonce: FuzzIdentities.followerNonce, leaderNonce: FuzzIdentities.leaderNonce
            )
        }
        var stream = ByteBuffer()
        switch side {
        case .follower:
            FrameParser.writePreamble(to: &stream)
            for message: WireMessage in [
                .hello(hello),
                .authenticate(Authenticate(followerProof: proof(.follower), epoch: 3, lastDurableLSN: 41)),
                .ack(durableLSN: 42),
                .heartbeatReply(HeartbeatReply(echoedSentAtNanoseconds: 7, durableLSN: 42)),
                .syncRequest(SyncRequest(files: [.init(index: 0, offset: 5, prefixChecksum: 9)], isLast: true)),
                .syncProgress(SyncProgressReport(bytesChecked: 10, bytesReceived: 20)),
            ] { message.write(to: &stream) }
        case .leader:
            WireMessage.challenge(Challenge(leaderNodeID: FuzzIdentities.leaderNodeID, leaderNonce: FuzzIdentities.leaderNonce, leaderProof: proof(.leader)))
                .write(to: &stream)
            WireMessage.welcome(Welcome(epoch: 3, resync: .resume, nextLSN: 1)).write(to: &stream)
            stream.writeImmutableBuffer(TestFrames.sealed(TestFrames.sampleRecords).frame)
            WireMessage.heartbeat(Heartbeat(leaderLSN: 8, sentAtNanoseconds: 7)).write(to: &stream)
        }
        var tagger = FrameTagger(side: side)
        tagger.keys = FuzzIdentities.keys
        var tagged: [UInt8] = []
        for piece in try! tagger.tag(stream) {
            switch piece {
            case .bytes(let bytes): tagged += bytes.readableBytesView
            case .tag(let tag): tagged += tag
            }
        }
        return [("stream", Array(stream.readableBytesView)), ("stream-tagged", tagged)]
    }
}
