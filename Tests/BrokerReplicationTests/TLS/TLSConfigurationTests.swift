import BrokerReplicationTesting
import Foundation
import Testing

@testable import BrokerReplication

/// Bad TLS files fail the leader's or follower's creation with an error naming the file, and
/// the node-id rule and the operator's keys behave as documented.
@Suite("TLS configuration")
struct TLSConfigurationTests {
    typealias Workspace = ReplicationTestCluster.Workspace

    func leaderError(_ cluster: Workspace, _ tls: ReplicationTLS) -> ReplicationError? {
        var configuration = cluster.leaderConfiguration()
        configuration.tls = tls
        do {
            _ = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: Workspace.logger)
            return nil
        } catch {
            return error
        }
    }

    func followerError(_ cluster: Workspace, _ tls: ReplicationTLS) -> ReplicationError? {
        var configuration = cluster.followerConfiguration("f1", port: 1)
        configuration.tls = tls
        do {
            _ = try ReplicationFollower(configuration: configuration, secret: cluster.secret, logger: Workspace.logger)
            return nil
        } catch {
            return error
        }
    }

    @Test func aMissingFileIsNamed() throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        var tls = try certificates.leaderTLS()
        tls.certificateChainFile = cluster.root + "/nowhere.pem"
        let error = try #require(leaderError(cluster, tls))
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.contains("nowhere.pem") && error.message.contains("does not exist"), "\(error.message)")
        var follower = try certificates.followerTLS(nodeID: "f1")
        follower.trustedRootsFile = cluster.root + "/no-ca.pem"
        let refused = try #require(followerError(cluster, follower))
        #expect(refused.code == .invalidConfiguration)
        #expect(refused.message.contains("no-ca.pem") && refused.message.contains("tls.trustedRootsFile"), "\(refused.message)")
    }

    @Test func aFileThatIsNotPEMIsNamed() throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let garbage = cluster.root + "/garbage.pem"
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: garbage))
        var tls = try certificates.leaderTLS()
        tls.privateKeyFile = garbage
        let error = try #require(leaderError(cluster, tls))
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.contains("garbage.pem") && error.message.contains("not PEM"), "\(error.message)")
    }

    @Test func aKeyThatDoesNotMatchTheCertificateIsNamed() throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        var tls = try certificates.leaderTLS()
        tls.privateKeyFile = try certificates.issue(file: "stranger", commonName: "stranger").privateKeyFile
        let error = try #require(leaderError(cluster, tls))
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.contains("stranger.key") && error.message.contains("does not match"), "\(error.message)")
    }

    @Test func goodFilesLoad() throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        #expect(leaderError(cluster, try certificates.leaderTLS(requireClientCertificate: true)) == nil)
        #expect(followerError(cluster, try certificates.followerTLS(nodeID: "f1")) == nil)
        #expect(followerError(cluster, ReplicationTLS(trustedRootsFile: certificates.caFile)) == nil)
    }

    @Test func theNodeIDMustBeADNSNameOrWithoutOneTheCommonName() {
        let withSAN = CertificateIdentity(dnsNames: ["f1", "f1.example"], commonName: "other")
        #expect(withSAN.admits(nodeID: "f1"))
        #expect(withSAN.admits(nodeID: "f1.example"))
        #expect(!withSAN.admits(nodeID: "other"), "the common name does not count when there is a DNS SAN")
        #expect(!withSAN.admits(nodeID: "F1"), "exact comparison")
        let commonNameOnly = CertificateIdentity(dnsNames: [], commonName: "f1")
        #expect(commonNameOnly.admits(nodeID: "f1"))
        #expect(!commonNameOnly.admits(nodeID: "f2"))
        #expect(!CertificateIdentity(dnsNames: [], commonName: nil).admits(nodeID: "f1"))
        let reason = withSAN.refusal(nodeID: "f9").reason
        #expect(reason.contains("\"f9\"") && reason.contains("\"f1\""), "\(reason)")
    }

    @Test func theFirstByteTellsATLSClientFromAPlaintextFollower() {
        #expect(TLSLink.classify(firstByte: 0x16) == .tls)
        #expect(TLSLink.classify(firstByte: UInt8(ascii: "B")) == .plaintextFollower)
        #expect(TLSLink.classify(firstByte: UInt8(ascii: "G")) == .other)
    }

    @Test func theOperatorsKeysAndEnvironmentSetTLSForBothRoles() async throws {
        let cluster = try Workspace()
        let file = cluster.root + "/settings.json"
        try Data(#"{"tlsCertificateFile": "/c.pem", "tlsPrivateKeyFile": "/k.pem"}"#.utf8).write(to: URL(fileURLWithPath: file))
        let settings = try await ReplicationConfiguration.load(
            file: file, environment: ["BRPL_TLS_TRUSTED_ROOTS_FILE": "/ca.pem", "BRPL_TLS_REQUIRE_CLIENT_CERTIFICATE": "true"]
        )
        let expected = ReplicationTLS(certificateChainFile: "/c.pem", privateKeyFile: "/k.pem", trustedRootsFile: "/ca.pem", requireClientCertificate: true)
        var leader = cluster.leaderConfiguration()
        settings.apply(to: &leader)
        #expect(leader.tls == expected)
        var follower = cluster.followerConfiguration("f1", port: 1)
        settings.apply(to: &follower)
        #expect(follower.tls == expected)
        let plaintext = try await ReplicationConfiguration.load(file: nil, environment: [:])
        #expect(plaintext.tls == nil)
        await #expect(throws: ReplicationError.self) {
            try await ReplicationConfiguration.load(file: nil, environment: ["BRPL_TLS_REQUIRE_CLIENT_CERTIFICATE": "yes"])
        }
        do {
            _ = try await ReplicationConfiguration.load(file: nil, environment: ["BRPL_TLS_PRIVATE_KEY_FILE": "/k.pem"])
            Issue.record("a key without a certificate must be refused")
        } catch {
            #expect(error.message.contains("tlsCertificateFile"), "\(error.message)")
        }
    }
}
