import BrokerReplication
import Crypto
import Foundation
import SwiftASN1
import X509

/// Certificates for TLS tests, made at test time so that nothing secret is ever committed: a
/// test CA, another CA nobody trusts, and leaf certificates issued by either, written as PEM
/// files into a directory the test owns (Docs/Operations.md, "TLS on the replication link").
///
/// ```swift
/// let certificates = try TestCertificates(directory: workspace.path + "/tls")
/// leaderConfiguration.tls = try certificates.leaderTLS(requireClientCertificate: true)
/// followerConfiguration.tls = try certificates.followerTLS(nodeID: "f1")
/// ```
///
/// Keys are P-256; every leaf is valid for both server and client authentication.
public struct TestCertificates: Sendable {
    /// A certificate and its key, as PEM files.
    public struct Issued: Sendable, Equatable {
        /// The PEM file of the certificate.
        public let certificateFile: String
        /// The PEM file of its private key (PKCS #8).
        public let privateKeyFile: String
    }

    /// Which CA signs a leaf certificate.
    public enum Issuer: Sendable {
        /// The test CA, whose certificate is ``caFile``.
        case testCA
        /// Another CA, whose certificate is ``otherCAFile`` and which no test configuration trusts.
        case otherCA
    }

    /// The directory the PEM files are written into.
    public let directory: String
    /// The test CA's certificate: the trusted roots file of both roles.
    public let caFile: String
    /// The other CA's certificate.
    public let otherCAFile: String
    private let ca: Authority
    private let otherCA: Authority

    private struct Authority: Sendable {
        let certificate: Certificate
        let key: P256.Signing.PrivateKey
    }

    /// Makes both CAs and writes their certificates into `directory` (created when missing).
    ///
    /// - Throws: when the directory or a file cannot be written.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        ca = try Self.makeAuthority(name: "BrokerReplication test CA")
        otherCA = try Self.makeAuthority(name: "Another test CA")
        caFile = directory + "/ca.pem"
        otherCAFile = directory + "/other-ca.pem"
        try Self.write(ca.certificate.serializeAsPEM().pemString, to: caFile)
        try Self.write(otherCA.certificate.serializeAsPEM().pemString, to: otherCAFile)
    }

    /// Issues a leaf certificate and writes it and its key as `<file>.pem` and `<file>.key`.
    ///
    /// - Parameters:
    ///   - file: the file names' stem in ``directory``.
    ///   - commonName: the subject common name.
    ///   - dnsNames: DNS subject alternative names (a follower's node id goes here).
    ///   - ipAddresses: IPv4 subject alternative names, dotted (a leader on 127.0.0.1 needs it).
    ///   - issuer: which CA signs it.
    ///   - expired: valid from two days ago until yesterday, instead of from an hour ago for a year.
    public func issue(
        file: String, commonName: String, dnsNames: [String] = [], ipAddresses: [String] = [], issuer: Issuer = .testCA, expired: Bool = false
    ) throws -> Issued {
        let authority = issuer == .testCA ? ca : otherCA
        let key = P256.Signing.PrivateKey()
        let now = Date()
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            let octets = address.split(separator: ".").compactMap { UInt8($0) }
            precondition(octets.count == 4, "an IPv4 address, dotted: \(address)")
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(octets))))
        }
        let subjectNames = names
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            if !subjectNames.isEmpty { SubjectAlternativeNames(subjectNames) }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: expired ? now - 2 * 86_400 : now - 3_600, notValidAfter: expired ? now - 86_400 : now + 365 * 86_400,
            issuer: authority.certificate.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(authority.key)
        )
        let issued = Issued(certificateFile: "\(directory)/\(file).pem", privateKeyFile: "\(directory)/\(file).key")
        try Self.write(certificate.serializeAsPEM().pemString, to: issued.certificateFile)
        try Self.write(key.pemRepresentation, to: issued.privateKeyFile, permissions: 0o600)
        return issued
    }

    /// A leader's TLS settings: a certificate for 127.0.0.1 and `localhost` (by default),
    /// trusting the test CA.
    ///
    /// - Parameters:
    ///   - requireClientCertificate: mutual TLS, tied to node ids.
    ///   - issuer: which CA signs the leader's certificate (``Issuer/otherCA``: one no follower trusts).
    ///   - dnsNames: the certificate's DNS names (another host's only, to test a name mismatch).
    ///   - ipAddresses: the certificate's IPv4 addresses, dotted.
    public func leaderTLS(
        requireClientCertificate: Bool = false, issuer: Issuer = .testCA, dnsNames: [String] = ["localhost"], ipAddresses: [String] = ["127.0.0.1"]
    ) throws -> ReplicationTLS {
        let issued = try issue(file: "leader", commonName: "leader", dnsNames: dnsNames, ipAddresses: ipAddresses, issuer: issuer)
        return ReplicationTLS(
            certificateChainFile: issued.certificateFile, privateKeyFile: issued.privateKeyFile, trustedRootsFile: caFile,
            requireClientCertificate: requireClientCertificate
        )
    }

    /// A follower's TLS settings: trusting the test CA, with a certificate whose DNS SAN is
    /// `nodeID` (or `certificateName` instead, to test a mismatch).
    ///
    /// - Parameters:
    ///   - nodeID: the follower's node id.
    ///   - certificateName: the name in the certificate; nil: `nodeID`.
    ///   - issuer: which CA signs it.
    ///   - expired: an expired certificate.
    public func followerTLS(nodeID: String, certificateName: String? = nil, issuer: Issuer = .testCA, expired: Bool = false) throws -> ReplicationTLS {
        let name = certificateName ?? nodeID
        let issued = try issue(file: "follower-\(nodeID)", commonName: name, dnsNames: [name], issuer: issuer, expired: expired)
        return ReplicationTLS(certificateChainFile: issued.certificateFile, privateKeyFile: issued.privateKeyFile, trustedRootsFile: caFile)
    }

    private static func makeAuthority(name: String) throws -> Authority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now - 86_400 * 3, notValidAfter: now + 86_400 * 365 * 2, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key)
        )
        return Authority(certificate: certificate, key: key)
    }

    private static func write(_ text: String, to path: String, permissions: Int = 0o644) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: permissions]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}
