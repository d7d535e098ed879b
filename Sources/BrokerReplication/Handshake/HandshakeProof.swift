import Crypto

/// The challenge-response proofs of the handshake: HMAC-SHA256 over a transcript.
///
/// Each side proves it knows the secret by MACing both nonces and both identities under a
/// label of its own role, so a proof cannot be replayed on another connection (fresh
/// nonces) or reflected back to its sender (different labels). See Docs/Protocol.md.
enum HandshakeProof {
    enum Role: String, Sendable {
        case leader = "BRPL/1 leader proof"
        case follower = "BRPL/1 follower proof"
    }

    /// A fresh random nonce for one handshake.
    static func makeNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<handshakeTokenBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func proof(
        role: Role,
        secret: SharedSecret,
        clusterID: String,
        leaderNodeID: String,
        followerNodeID: String,
        followerNonce: [UInt8],
        leaderNonce: [UInt8]
    ) -> [UInt8] {
        let transcript = transcript(role, clusterID, leaderNodeID, followerNodeID, followerNonce, leaderNonce)
        return Array(HMAC<SHA256>.authenticationCode(for: transcript, using: secret.key))
    }

    /// Checks a peer's proof in constant time.
    static func isValid(
        _ proof: [UInt8],
        role: Role,
        secret: SharedSecret,
        clusterID: String,
        leaderNodeID: String,
        followerNodeID: String,
        followerNonce: [UInt8],
        leaderNonce: [UInt8]
    ) -> Bool {
        let transcript = transcript(role, clusterID, leaderNodeID, followerNodeID, followerNonce, leaderNonce)
        return HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: transcript, using: secret.key)
    }

    /// Every field behind its length, so no two different handshakes share a transcript.
    private static func transcript(
        _ role: Role,
        _ clusterID: String,
        _ leaderNodeID: String,
        _ followerNodeID: String,
        _ followerNonce: [UInt8],
        _ leaderNonce: [UInt8]
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        for field in [Array(role.rawValue.utf8), Array(clusterID.utf8), Array(leaderNodeID.utf8), Array(followerNodeID.utf8), followerNonce, leaderNonce] {
            bytes.append(contentsOf: withUnsafeBytes(of: UInt16(field.count).bigEndian, Array.init))
            bytes.append(contentsOf: field)
        }
        return bytes
    }
}
