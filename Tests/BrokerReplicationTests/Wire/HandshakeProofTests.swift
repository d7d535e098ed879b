import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Handshake proofs")
struct HandshakeProofTests {
    let secret = try! SharedSecret(bytes: Array("correct horse battery staple".utf8))
    let followerNonce = HandshakeProof.makeNonce()
    let leaderNonce = HandshakeProof.makeNonce()

    func proof(_ role: HandshakeProof.Role, secret: SharedSecret? = nil, cluster: String = "c1", leaderNonce: [UInt8]? = nil) -> [UInt8] {
        HandshakeProof.proof(
            role: role, secret: secret ?? self.secret, clusterID: cluster, leaderNodeID: "l", followerNodeID: "f",
            followerNonce: followerNonce, leaderNonce: leaderNonce ?? self.leaderNonce
        )
    }

    func isValid(_ proof: [UInt8], as role: HandshakeProof.Role) -> Bool {
        HandshakeProof.isValid(
            proof, role: role, secret: secret, clusterID: "c1", leaderNodeID: "l", followerNodeID: "f",
            followerNonce: followerNonce, leaderNonce: leaderNonce
        )
    }

    @Test func aProofMadeWithTheSecretVerifies() {
        #expect(proof(.follower).count == handshakeTokenBytes)
        #expect(isValid(proof(.follower), as: .follower))
        #expect(isValid(proof(.leader), as: .leader))
    }

    @Test func wrongSecretReflectionReplayAndClusterAreRefused() throws {
        let other = try SharedSecret(bytes: Array("another secret of enough bytes".utf8))
        #expect(!isValid(proof(.follower, secret: other), as: .follower))
        #expect(!isValid(proof(.leader), as: .follower), "a leader's proof must not pass as a follower's")
        #expect(!isValid(proof(.follower, leaderNonce: HandshakeProof.makeNonce()), as: .follower), "replayed with another nonce")
        #expect(!isValid(proof(.follower, cluster: "c2"), as: .follower))
        #expect(!isValid([UInt8](repeating: 0, count: 32), as: .follower))
    }

    @Test func noncesAreFresh() {
        #expect(HandshakeProof.makeNonce() != HandshakeProof.makeNonce())
    }

    @Test func shortSecretsAreRefusedWithTheReason() {
        let error = #expect(throws: ReplicationError.self) { try SharedSecret(bytes: Array("short".utf8)) }
        #expect(error?.message == "the shared secret has 5 bytes; it needs at least 16")
    }

    @Test func secretFilesIgnoreOneTrailingNewlineAndNameTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("secret").path
        try "correct horse battery staple\n".write(toFile: path, atomically: true, encoding: .utf8)
        let fromFile = try SharedSecret(contentsOfFile: path)
        #expect(HandshakeProof.isValid(
            proof(.follower), role: .follower, secret: fromFile, clusterID: "c1", leaderNodeID: "l", followerNodeID: "f",
            followerNonce: followerNonce, leaderNonce: leaderNonce
        ))
        let missing = #expect(throws: ReplicationError.self) { try SharedSecret(contentsOfFile: path + ".missing") }
        #expect(missing?.message.contains("cannot read the secret file") == true)
    }
}
