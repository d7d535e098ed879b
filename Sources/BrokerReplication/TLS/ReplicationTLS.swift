import Foundation
import NIOSSL
import X509

/// TLS on the replication link (Docs/Operations.md, "TLS on the replication link"): the files a
/// leader or follower presents and trusts, and whether the leader demands a follower certificate.
///
/// TLS sits below the frames: the preamble, the handshake and every frame are unchanged, and
/// still authenticated by the shared secret. nil in ``ReplicationLeaderConfiguration/tls`` or
/// ``ReplicationFollowerConfiguration/tls`` means plaintext, as before. Both ends must agree: a
/// plaintext follower is refused by a TLS leader, and a TLS follower cannot talk to a plaintext
/// leader; both say so in the follower's ``ReplicationFollower/FollowerStatus/lastError``.
public struct ReplicationTLS: Sendable, Equatable, Hashable {
    /// The PEM certificate chain this node presents, its own certificate first. Required on a
    /// leader; on a follower, required when the leader sets ``requireClientCertificate``.
    public var certificateChainFile: String?
    /// The PEM private key of the first certificate in ``certificateChainFile`` (unencrypted).
    public var privateKeyFile: String?
    /// The PEM CA bundle the peer's certificate must chain to. Required on a follower (it
    /// verifies the leader, and the leader's host name or IP address); on a leader, required
    /// with ``requireClientCertificate``.
    public var trustedRootsFile: String?
    /// Leader only: demand a follower certificate that chains to ``trustedRootsFile`` and names
    /// the follower's node id (mutual TLS; ``nodeIdentityRule``). Ignored on a follower.
    public var requireClientCertificate: Bool

    /// The rule tying a follower's node id to its certificate under ``requireClientCertificate``.
    public static let nodeIdentityRule =
        "the follower's node id must equal one DNS subject alternative name of its certificate, exactly (byte for byte); "
        + "a certificate with no DNS subject alternative name must have the node id as its subject common name"

    /// TLS settings from the given files; every file not given is absent.
    ///
    /// - Parameters:
    ///   - certificateChainFile: the PEM chain this node presents (leader; follower under mutual TLS).
    ///   - privateKeyFile: the PEM key of that chain's first certificate.
    ///   - trustedRootsFile: the PEM CA bundle the peer must chain to.
    ///   - requireClientCertificate: leader only: mutual TLS tied to node ids.
    public init(
        certificateChainFile: String? = nil, privateKeyFile: String? = nil, trustedRootsFile: String? = nil,
        requireClientCertificate: Bool = false
    ) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustedRootsFile = trustedRootsFile
        self.requireClientCertificate = requireClientCertificate
    }

    /// The leader's TLS context, with every file read and checked now, so that a bad file fails
    /// the leader's start rather than each follower's connection.
    ///
    /// - Throws: ``ReplicationError/Code/invalidConfiguration`` naming the setting and the file:
    ///   missing or unreadable, not PEM, a key that does not match the certificate.
    func makeServerContext() throws(ReplicationError) -> NIOSSLContext {
        guard let chainPath = certificateChainFile else { throw .invalidSetting("tls.certificateChainFile", "a TLS leader needs a certificate chain file") }
        guard let keyPath = privateKeyFile else { throw .invalidSetting("tls.privateKeyFile", "a TLS leader needs a private key file") }
        let chain = try Self.loadChain(chainPath, key: "tls.certificateChainFile")
        let key = try Self.loadKey(keyPath, matching: chain[0], chainPath: chainPath)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        if requireClientCertificate {
            guard let rootsPath = trustedRootsFile else {
                throw .invalidSetting("tls.trustedRootsFile", "requireClientCertificate needs the CA bundle that follower certificates chain to")
            }
            configuration.trustRoots = .certificates(try Self.loadChain(rootsPath, key: "tls.trustedRootsFile"))
            configuration.certificateVerification = .noHostnameVerification
        }
        configuration.minimumTLSVersion = .tlsv12
        return try Self.context(configuration, files: [chainPath, keyPath])
    }

    /// The follower's TLS context: it verifies the leader against ``trustedRootsFile`` only,
    /// never the system's roots, and presents its own certificate when it has one.
    ///
    /// - Throws: ``ReplicationError/Code/invalidConfiguration`` naming the setting and the file.
    func makeClientContext() throws(ReplicationError) -> NIOSSLContext {
        guard let rootsPath = trustedRootsFile else {
            throw .invalidSetting("tls.trustedRootsFile", "a TLS follower needs the CA bundle that the leader's certificate chains to")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try Self.loadChain(rootsPath, key: "tls.trustedRootsFile"))
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        var files = [rootsPath]
        switch (certificateChainFile, privateKeyFile) {
        case (nil, nil):
            break
        case (let chainPath?, let keyPath?):
            let chain = try Self.loadChain(chainPath, key: "tls.certificateChainFile")
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(try Self.loadKey(keyPath, matching: chain[0], chainPath: chainPath))
            files += [chainPath, keyPath]
        case (nil, _):
            throw .invalidSetting("tls.certificateChainFile", "a private key file is set without a certificate chain file")
        case (_, nil):
            throw .invalidSetting("tls.privateKeyFile", "a certificate chain file is set without a private key file")
        }
        return try Self.context(configuration, files: files)
    }

    private static func context(_ configuration: TLSConfiguration, files: [String]) throws(ReplicationError) -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw .invalidConfiguration("tls: cannot use \(files.map(\.debugDescription).joined(separator: ", ")): \(error)")
        }
    }

    /// The file's bytes as text, or an error naming the setting, the file and why.
    static func read(_ path: String, key: String) throws(ReplicationError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .invalidSetting(key, "the file \(path.debugDescription) does not exist")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw .invalidSetting(key, "cannot read the file \(path.debugDescription)")
        }
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw .invalidSetting(key, "the file \(path.debugDescription) is not PEM (no \"-----BEGIN\" line)")
        }
        return text
    }

    /// Every certificate in a PEM file, at least one.
    static func loadChain(_ path: String, key: String) throws(ReplicationError) -> [NIOSSLCertificate] {
        let text = try read(path, key: key)
        guard text.contains("-----BEGIN CERTIFICATE-----") else {
            throw .invalidSetting(key, "the file \(path.debugDescription) holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)")
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(text.utf8))
        } catch {
            throw .invalidSetting(key, "the file \(path.debugDescription) is not a valid PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw .invalidSetting(key, "the file \(path.debugDescription) holds no certificate") }
        return chain
    }

    /// The private key in a PEM file, checked against the leaf certificate it must belong to.
    static func loadKey(_ path: String, matching leaf: NIOSSLCertificate, chainPath: String) throws(ReplicationError) -> NIOSSLPrivateKey {
        let key = "tls.privateKeyFile"
        let text = try read(path, key: key)
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: Array(text.utf8), format: .pem)
        } catch {
            throw .invalidSetting(key, "the file \(path.debugDescription) is not a valid PEM private key: \(error)")
        }
        // swift-certificates reads the common key types; one it cannot read is left to BoringSSL,
        // which still refuses a mismatch when the context is made.
        if let parsed = try? Certificate.PrivateKey(pemEncoded: text),
            let certificate = try? Certificate(derEncoded: leaf.toDERBytes()),
            parsed.publicKey != certificate.publicKey
        {
            throw .invalidSetting(key, "the key in \(path.debugDescription) does not match the certificate in \(chainPath.debugDescription)")
        }
        return privateKey
    }
}
