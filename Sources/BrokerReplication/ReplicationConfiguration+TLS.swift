/// The TLS keys of the operator's file: `tlsCertificateFile`, `tlsPrivateKeyFile`,
/// `tlsTrustedRootsFile` and `tlsRequireClientCertificate`, overridable by `BRPL_TLS_*`.
extension ReplicationConfiguration {
    /// The TLS settings these keys name, for both roles; nil when no TLS key is set (plaintext).
    ///
    /// Which files each role needs is checked when the leader or follower is created
    /// (``ReplicationTLS``), since one file serves both roles.
    public var tls: ReplicationTLS? {
        guard tlsCertificateFile != nil || tlsPrivateKeyFile != nil || tlsTrustedRootsFile != nil || tlsRequireClientCertificate else { return nil }
        return ReplicationTLS(
            certificateChainFile: tlsCertificateFile, privateKeyFile: tlsPrivateKeyFile, trustedRootsFile: tlsTrustedRootsFile,
            requireClientCertificate: tlsRequireClientCertificate
        )
    }

    /// The TLS keys that must come together: a key file with its certificate, and client
    /// certificates only with the roots that check them.
    func validateTLS() throws(ReplicationError) {
        let invalid = ReplicationError.invalidSetting
        for (key, value) in [("tlsCertificateFile", tlsCertificateFile), ("tlsPrivateKeyFile", tlsPrivateKeyFile), ("tlsTrustedRootsFile", tlsTrustedRootsFile)]
        where value?.isEmpty == true {
            throw invalid(key, "must be a file path, got an empty string")
        }
        if (tlsCertificateFile == nil) != (tlsPrivateKeyFile == nil) {
            throw invalid(tlsCertificateFile == nil ? "tlsCertificateFile" : "tlsPrivateKeyFile", "tlsCertificateFile and tlsPrivateKeyFile go together")
        }
        if tlsRequireClientCertificate, tlsTrustedRootsFile == nil {
            throw invalid("tlsTrustedRootsFile", "tlsRequireClientCertificate needs the CA bundle that follower certificates chain to")
        }
    }
}

extension ReplicationConfiguration {
    /// Sets the TLS keys a command line gives (`--tls-cert`, `--tls-key`, `--tls-ca`,
    /// `--tls-require-client-cert`), which override the file and the environment, and checks them.
    ///
    /// - Parameters:
    ///   - certificateFile: replaces `tlsCertificateFile` when not nil.
    ///   - privateKeyFile: replaces `tlsPrivateKeyFile` when not nil.
    ///   - trustedRootsFile: replaces `tlsTrustedRootsFile` when not nil.
    ///   - requireClientCertificate: true sets `tlsRequireClientCertificate`; false keeps it.
    /// - Throws: ``ReplicationError/Code/invalidConfiguration`` naming the key when the TLS keys
    ///   no longer go together.
    public mutating func overrideTLS(
        certificateFile: String?, privateKeyFile: String?, trustedRootsFile: String?, requireClientCertificate: Bool
    ) throws(ReplicationError) {
        if let certificateFile { tlsCertificateFile = certificateFile }
        if let privateKeyFile { tlsPrivateKeyFile = privateKeyFile }
        if let trustedRootsFile { tlsTrustedRootsFile = trustedRootsFile }
        if requireClientCertificate { tlsRequireClientCertificate = true }
        try validateTLS()
    }
}
