import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// Both handshake state machines fed the messages of one byte stream: the leader reads it as a
/// would-be follower's stream (after the preamble), the follower as a would-be leader's.
///
/// Beyond not crashing: nobody is admitted or answered without the proof the secret gives,
/// every message a machine builds decodes back to itself, and a finished machine only refuses.
enum HandshakeChecks {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        try checkLeader(reading: messages(in: input, leaderSide: true))
        try checkFollower(reading: messages(in: input, leaderSide: false))
    }

    /// The messages up to the first frame the side refuses, as its link reads them.
    static func messages(in input: [UInt8], leaderSide: Bool) -> [WireMessage] {
        var parser = FrameParser(limits: fuzzLimits, preamble: leaderSide ? .expected : .none)
        var buffer = ByteBuffer(bytes: input)
        var messages: [WireMessage] = []
        while let frame = try? parser.next(from: &buffer), let message = try? WireMessage(decoding: frame, limits: fuzzLimits) {
            messages.append(message)
        }
        return messages
    }

    private static func checkLeader(reading messages: [WireMessage]) throws(FuzzViolation) {
        var handshake = LeaderHandshake(
            clusterID: FuzzIdentities.clusterID, leaderNodeID: FuzzIdentities.leaderNodeID,
            secret: FuzzIdentities.secret, leaderNonce: FuzzIdentities.leaderNonce
        )
        var challenged: Hello?
        var finished = false
        for message in messages {
            let action = handshake.received(message)
            if finished {
                guard case .refuse = action else { throw FuzzViolation(description: "finished leader handshake answered \(message.frameType) with \(action)") }
            }
            switch action {
            case .sendChallenge(let challenge):
                guard case .hello(let hello) = message, hello.clusterID == FuzzIdentities.clusterID else {
                    throw FuzzViolation(description: "leader challenged after \(message.frameType)")
                }
                challenged = hello
                try WireMessage.challenge(challenge).ensureRoundTrip()
            case .refuse(let refusal):
                try WireMessage.refusal(refusal).ensureRoundTrip()
                finished = true
            case .refusedByFollower:
                finished = true
            case .authenticated(let nodeID, _, _):
                guard let hello = challenged, case .authenticate(let authenticate) = message else {
                    throw FuzzViolation(description: "leader authenticated a follower it never challenged")
                }
                let expected = HandshakeProof.proof(
                    role: .follower, secret: FuzzIdentities.secret, clusterID: FuzzIdentities.clusterID,
                    leaderNodeID: FuzzIdentities.leaderNodeID, followerNodeID: hello.nodeID,
                    followerNonce: hello.followerNonce, leaderNonce: FuzzIdentities.leaderNonce
                )
                try ensure(authenticate.followerProof == expected && nodeID == hello.nodeID, "leader authenticated \(nodeID) without its proof")
                finished = true
            }
        }
    }

    private static func checkFollower(reading messages: [WireMessage]) throws(FuzzViolation) {
        var handshake = FollowerHandshake(
            clusterID: FuzzIdentities.clusterID, nodeID: FuzzIdentities.followerNodeID,
            secret: FuzzIdentities.secret, followerNonce: FuzzIdentities.followerNonce
        )
        var authenticated = false
        for message in messages {
            let action = handshake.received(message, position: (epoch: 3, lastDurableLSN: 41))
            switch action {
            case .sendAuthenticate(let authenticate):
                guard case .challenge(let challenge) = message, !authenticated else {
                    throw FuzzViolation(description: "follower authenticated after \(message.frameType)")
                }
                let expected = HandshakeProof.proof(
                    role: .leader, secret: FuzzIdentities.secret, clusterID: FuzzIdentities.clusterID,
                    leaderNodeID: challenge.leaderNodeID, followerNodeID: FuzzIdentities.followerNodeID,
                    followerNonce: FuzzIdentities.followerNonce, leaderNonce: challenge.leaderNonce
                )
                try ensure(challenge.leaderProof == expected, "follower answered a leader that did not prove the secret")
                try ensure(authenticate.epoch == 3 && authenticate.lastDurableLSN == 41, "follower sent another position")
                try WireMessage.authenticate(authenticate).ensureRoundTrip()
                authenticated = true
            case .welcomed:
                try ensure(authenticated, "follower welcomed before it authenticated")
                return
            case .refuse(let refusal):
                try WireMessage.refusal(refusal).ensureRoundTrip()
                return
            case .refused, .protocolError:
                return
            }
        }
    }
}
