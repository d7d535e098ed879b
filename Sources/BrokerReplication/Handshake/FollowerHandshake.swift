/// The follower's side of the handshake as a pure state machine: hello, check the leader's
/// proof, authenticate with its own and its position, then the welcome (Docs/Protocol.md,
/// "Handshake").
///
/// The follower checks the leader's proof before it proves anything itself, so a server
/// that does not know the secret learns nothing from it.
struct FollowerHandshake {
    enum State {
        case awaitingChallenge
        case awaitingWelcome
        case finished
    }

    enum Action: Equatable {
        /// Send the authentication and wait for the welcome.
        case sendAuthenticate(Authenticate)
        /// Tell the leader why, then fail with ``LeaderLink/Refused``.
        case refuse(Refusal)
        /// The leader refused this follower: fail with its reason.
        case refused(Refusal)
        /// The leader broke the protocol: fail with this description.
        case protocolError(String)
        /// Accepted: resume or full-sync as the welcome says.
        case welcomed(Welcome)
    }

    let clusterID: String
    let nodeID: String
    let secret: SharedSecret
    let followerNonce: [UInt8]
    private(set) var state = State.awaitingChallenge

    init(clusterID: String, nodeID: String, secret: SharedSecret, followerNonce: [UInt8] = HandshakeProof.makeNonce()) {
        self.clusterID = clusterID
        self.nodeID = nodeID
        self.secret = secret
        self.followerNonce = followerNonce
    }

    /// The first message, sent right after the protocol preamble.
    var hello: Hello { Hello(clusterID: clusterID, nodeID: nodeID, followerNonce: followerNonce) }

    /// The next message from the leader; `position` is where this follower's data stands.
    mutating func received(_ message: WireMessage, position: (epoch: UInt64, lastDurableLSN: UInt64)) -> Action {
        switch (state, message) {
        case (_, .refusal(let refusal)):
            state = .finished
            return .refused(refusal)
        case (.awaitingChallenge, .challenge(let challenge)):
            guard HandshakeProof.isValid(
                challenge.leaderProof, role: .leader, secret: secret, clusterID: clusterID, leaderNodeID: challenge.leaderNodeID,
                followerNodeID: nodeID, followerNonce: followerNonce, leaderNonce: challenge.leaderNonce
            ) else {
                state = .finished
                return .refuse(Refusal(
                    code: .authenticationFailed,
                    reason: "leader \"\(challenge.leaderNodeID)\" could not prove the shared secret (the secrets differ, or it is not the real leader)"
                ))
            }
            state = .awaitingWelcome
            let proof = HandshakeProof.proof(
                role: .follower, secret: secret, clusterID: clusterID, leaderNodeID: challenge.leaderNodeID, followerNodeID: nodeID,
                followerNonce: followerNonce, leaderNonce: challenge.leaderNonce
            )
            return .sendAuthenticate(Authenticate(followerProof: proof, epoch: position.epoch, lastDurableLSN: position.lastDurableLSN))
        case (.awaitingChallenge, _):
            state = .finished
            return .protocolError("expected a challenge from the leader, got \(message.frameType)")
        case (.awaitingWelcome, .welcome(let welcome)):
            state = .finished
            return .welcomed(welcome)
        case (.awaitingWelcome, _), (.finished, _):
            state = .finished
            return .protocolError("expected welcome from the leader, got \(message.frameType)")
        }
    }
}
