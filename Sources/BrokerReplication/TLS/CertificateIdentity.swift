import NIOCore
import NIOSSL
import X509

/// The names a follower's certificate gives it, and the rule that ties them to the node id the
/// follower announces in its hello (``ReplicationTLS/nodeIdentityRule``).
///
/// Under mutual TLS the certificate proves who holds the key; the node id is what the leader
/// tracks, evicts and counts in the in-sync set. Tying the two stops one follower's certificate
/// from standing in for another node.
struct CertificateIdentity: Equatable, Sendable {
    /// The certificate's DNS subject alternative names, in order.
    var dnsNames: [String]
    /// The last common name of the certificate's subject, if any.
    var commonName: String?

    /// Whether `nodeID` is a name of this certificate: equal to one DNS SAN; only when there is
    /// no DNS SAN, equal to the subject common name. Exact comparison, no case folding or
    /// wildcards: a node id is not a host name.
    func admits(nodeID: String) -> Bool {
        if !dnsNames.isEmpty { return dnsNames.contains(nodeID) }
        return commonName == nodeID
    }

    /// The names the rule compares, for a refusal a person can act on.
    var describedNames: String {
        if !dnsNames.isEmpty { return "DNS subject alternative names \(dnsNames)" }
        if let commonName { return "no DNS subject alternative name and subject common name \(commonName.debugDescription)" }
        return "no DNS subject alternative name and no subject common name"
    }

    /// The refusal for a node id the certificate does not name, naming both.
    func refusal(nodeID: String) -> Refusal {
        Refusal(
            code: .authenticationFailed,
            reason: "node id \(nodeID.debugDescription) is not a name of the follower's TLS certificate, which has \(describedNames)"
        )
    }
}

extension CertificateIdentity {
    /// The names of a DER certificate; nil when it cannot be parsed.
    init?(derEncoded bytes: [UInt8]) {
        guard let certificate = try? Certificate(derEncoded: bytes) else { return nil }
        var dnsNames: [String] = []
        if let names = try? certificate.extensions.subjectAlternativeNames {
            for name in names {
                if case .dnsName(let dns) = name { dnsNames.append(dns) }
            }
        }
        var commonName: String?
        for relativeName in certificate.subject {
            for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
                if let name = String(attribute.value) { commonName = name }
            }
        }
        self.init(dnsNames: dnsNames, commonName: commonName)
    }

    /// The identity of the peer certificate NIOSSL verified on this channel; nil when the
    /// channel has no TLS or the peer sent no certificate.
    static func ofPeer(on channel: any Channel) async -> CertificateIdentity? {
        guard let certificate = try? await channel.nioSSL_peerCertificate().get(),
            let bytes = try? certificate.toDERBytes()
        else { return nil }
        return CertificateIdentity(derEncoded: bytes)
    }
}
