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

    /// `BRPL_TLS_CERTIFICATE_FILE`, `BRPL_TLS_PRIVATE_KEY_FILE`, `BRPL_TLS_TRUSTED_ROOTS_FILE`
    /// and `BRPL_TLS_REQUIRE_CLIENT_CERTIFICATE` (`true` or `false`).
    mutating func applyTLSEnvironment(_ environment: [String: String]) throws(ReplicationError) {
        func path(_ key: String) throws(ReplicationError) -> String? {
            guard let text = environment[Self.environmentName(for: key)] else { return nil }
            if text.isEmpty { throw .invalidSetting(key, "\(Self.environmentName(for: key)) is empty; unset it for no file") }
            return text
        }
        if let v = try path("tlsCertificateFile") { tlsCertificateFile = v }
        if let v = try path("tlsPrivateKeyFile") { tlsPrivateKeyFile = v }
        if let v = try path("tlsTrustedRootsFile") { tlsTrustedRootsFile = v }
        let name = Self.environmentName(for: "tlsRequireClientCertificate")
        if let text = environment[name] {
            guard let value = Bool(text) else { throw .invalidSetting("tlsRequireClientCertificate", "\(name)=\(text.debugDescription) is not true or false") }
            tlsRequireClientCertificate = value
        }
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
