import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Both sides of the handshake driven message by message, with no socket: each side's
/// answer is fed to the other, as the handlers do.
@Suite("Handshake state machines")
struct HandshakeStateMachineTests {
    static let secret = try! SharedSecret(bytes: Array("correct horse battery staple".utf8))
    static let otherSecret = try! SharedSecret(bytes: Array("another secret of sixteen+ bytes".utf8))

    static func leader(secret: SharedSecret = secret, cluster: String = "orders") -> LeaderHandshake {
        LeaderHandshake(clusterID: cluster, leaderNodeID: "leader-1", secret: secret)
    }

    static func follower(secret: SharedSecret = secret, cluster: String = "orders") -> FollowerHandshake {
        FollowerHandshake(clusterID: cluster, nodeID: "f1", secret: secret)
    }

    @Test func followersWithTheSecretAreAuthenticatedWithTheirPosition() throws {
        var leader = Self.leader()
        var follower = Self.follower()
        guard case .sendChallenge(let challenge) = leader.received(.hello(follower.hello)) else { throw Failure("no challenge") }
        guard case .sendAuthenticate(let authenticate) = follower.received(.challenge(challenge), position: (3, 42)) else {
            throw Failure("the follower did not accept the leader's proof")
        }
        #expect(leader.received(.authenticate(authenticate)) == .authenticated(nodeID: "f1", epoch: 3, lastDurableLSN: 42))
        let welcome = Welcome(epoch: 3, resync: .resume, nextLSN: 43)
        #expect(follower.received(.welcome(welcome), position: (3, 42)) == .welcomed(welcome))
    }

    @Test func anotherClusterIsRefusedAtTheHello() {
        var leader = Self.leader()
        guard case .refuse(let refusal) = leader.received(.hello(Self.follower(cluster: "billing").hello)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.code == .wrongCluster)
        #expect(refusal.reason.contains("\"billing\""))
    }

    @Test func aFollowerWithAnotherSecretIsRefusedAfterItsProof() throws {
        var leader = Self.leader()
        var follower = Self.follower(secret: Self.otherSecret)
        guard case .sendChallenge(let challenge) = leader.received(.hello(follower.hello)) else { throw Failure("no challenge") }
        // The follower cannot check the leader's proof either: it refuses first.
        guard case .refuse(let refusal) = follower.received(.challenge(challenge), position: (0, 0)) else {
            throw Failure("the follower accepted a proof made with another secret")
        }
        #expect(refusal.code == .authenticationFailed)
        #expect(leader.received(.refusal(refusal)) == .refusedByFollower(nodeID: "f1", refusal))

        // A forged proof on its own is refused by the leader.
        var second = Self.leader()
        _ = second.received(.hello(follower.hello))
        let forged = Authenticate(followerProof: Array(repeating: 7, count: handshakeTokenBytes), epoch: 0, lastDurableLSN: 0)
        guard case .refuse(let refused) = second.received(.authenticate(forged)) else { throw Failure("a forged proof was accepted") }
        #expect(refused.code == .authenticationFailed)
    }

    @Test func messagesOutOfOrderAreProtocolViolations() {
        var leader = Self.leader()
        guard case .refuse(let refusal) = leader.received(.ack(durableLSN: 1)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.code == .protocolViolation)
        var follower = Self.follower()
        guard case .protocolError = follower.received(.welcome(Welcome(epoch: 1, resync: .fullSync, nextLSN: 0)), position: (0, 0)) else {
            Issue.record("a welcome before the challenge was accepted")
            return
        }
    }

    @Test func aLeadersRefusalEndsTheFollowersHandshakeWithItsReason() {
        var follower = Self.follower()
        let refusal = Refusal(code: .duplicateNode, reason: "node id \"f1\" is already connected")
        #expect(follower.received(.refusal(refusal), position: (0, 0)) == .refused(refusal))
    }

    struct Failure: Error {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
