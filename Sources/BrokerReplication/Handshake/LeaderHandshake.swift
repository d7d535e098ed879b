/// The leader's side of the handshake as a pure state machine: hello, challenge, authenticate,
/// then admission or a refusal with its reason (Docs/Protocol.md, "Handshake").
///
/// It checks the cluster and the follower's proof and makes the leader's own proof; the
/// handler (``FollowerLink``) only reads frames, performs the returned action and, once the
/// follower is authenticated, asks the leader's state whether and how to admit it.
struct LeaderHandshake {
    enum State {
        case awaitingHello
        case awaitingAuthenticate(Hello)
        case finished
    }

    enum Action: Equatable {
        /// Send the challenge and wait for the next frame.
        case sendChallenge(Challenge)
        /// Send this refusal, then close.
        case refuse(Refusal)
        /// The follower refused this leader (it could not check the leader's proof): close
        /// without answering, and log why.
        case refusedByFollower(nodeID: String, Refusal)
        /// Authenticated: admit this follower, whose data stands at `epoch` / `lastDurableLSN`.
        case authenticated(nodeID: String, epoch: UInt64, lastDurableLSN: UInt64)
    }

    let clusterID: String
    let leaderNodeID: String
    let secret: SharedSecret
    /// Fresh for every connection, so no proof can be replayed on another.
    let leaderNonce: [UInt8]
    private(set) var state = State.awaitingHello

    init(clusterID: String, leaderNodeID: String, secret: SharedSecret, leaderNonce: [UInt8] = HandshakeProof.makeNonce()) {
        self.clusterID = clusterID
        self.leaderNodeID = leaderNodeID
        self.secret = secret
        self.leaderNonce = leaderNonce
    }

    /// The next message from the follower.
    mutating func received(_ message: WireMessage) -> Action {
        switch (state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.clusterID == clusterID else {
                state = .finished
                return .refuse(Refusal(
                    code: .wrongCluster, reason: "this leader serves cluster \"\(clusterID)\", the follower asked for \"\(hello.clusterID)\""
                ))
            }
            state = .awaitingAuthenticate(hello)
            let proof = HandshakeProof.proof(
                role: .leader, secret: secret, clusterID: clusterID, leaderNodeID: leaderNodeID, followerNodeID: hello.nodeID,
                followerNonce: hello.followerNonce, leaderNonce: leaderNonce
            )
            return .sendChallenge(Challenge(leaderNodeID: leaderNodeID, leaderNonce: leaderNonce, leaderProof: proof))
        case (.awaitingHello, _):
            state = .finished
            return .refuse(Refusal(code: .protocolViolation, reason: "expected hello, got \(message.frameType)"))
        case (.awaitingAuthenticate(let hello), .refusal(let refusal)):
            state = .finished
            return .refusedByFollower(nodeID: hello.nodeID, refusal)
        case (.awaitingAuthenticate(let hello), .authenticate(let authenticate)):
            state = .finished
            guard HandshakeProof.isValid(
                authenticate.followerProof, role: .follower, secret: secret, clusterID: clusterID, leaderNodeID: leaderNodeID,
                followerNodeID: hello.nodeID, followerNonce: hello.followerNonce, leaderNonce: leaderNonce
            ) else {
                return .refuse(Refusal(code: .authenticationFailed, reason: "wrong shared secret (follower \"\(hello.nodeID)\")"))
            }
            return .authenticated(nodeID: hello.nodeID, epoch: authenticate.epoch, lastDurableLSN: authenticate.lastDurableLSN)
        case (.awaitingAuthenticate, _):
            state = .finished
            return .refuse(Refusal(code: .protocolViolation, reason: "expected authenticate, got \(message.frameType)"))
        case (.finished, _):
            return .refuse(Refusal(code: .protocolViolation, reason: "the handshake is over, got \(message.frameType)"))
        }
    }
}
