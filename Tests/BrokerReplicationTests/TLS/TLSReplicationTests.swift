import BrokerReplicationTesting
import Foundation
import HeavyTestGate
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Replication over TLS, end to end on loopback with certificates made at test time
/// (``TestCertificates``): what converges, and what each refusal says.
@Suite("TLS on the replication link", .serialized, .heavy)
struct TLSReplicationTests {
    typealias Workspace = ReplicationTestCluster.Workspace

    /// A few thousand appends over 20 files while the follower streams.
    static func produce(_ leader: ReplicationLeader, records: Int) async throws {
        for index in 0..<records {
            try await leader.append(to: "queues/q\(index % 20)/segment.1", bytes: Array("record \(index) over TLS".utf8))
            if index % 64 == 63 { await Task.yield() }
        }
        leader.flush()
    }

    /// Runs a follower with `tls` against the leader on `port` (dialled as `leaderHost`) until
    /// it shows an error, and until it has tried at least `connects` times.
    static func refusal(
        _ cluster: Workspace, _ name: String, port: Int, tls: ReplicationTLS?, leaderHost: String = "127.0.0.1", connects: Int = 1
    ) async throws -> String? {
        var lastError: String?
        try await withFollower(cluster, name, port: port, configure: { $0.tls = tls; $0.leaderHost = leaderHost }) { follower in
            _ = try await Workspace.eventually(timeout: .seconds(30)) { follower.status().lastError != nil && follower.status().connects >= connects }
            lastError = follower.status().lastError
            #expect(follower.status().lastDurableLSN == 0, "a refused follower received nothing")
        }
        return lastError
    }

    @Test func replicationOverMutualTLSConvergesByteIdenticalUnderLoad() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS(requireClientCertificate: true)
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { leader, port in
            try await Self.produce(leader, records: 1_500)
            let followerTLS = try certificates.followerTLS(nodeID: "f1")
            try await withFollower(cluster, "f1", port: port, configure: { $0.tls = followerTLS }) { follower in
                try await Self.produce(leader, records: 2_500)
                let last = leader.lastLSN
                #expect(last >= 4_000)
                let converged = try await Workspace.eventually(timeout: .seconds(120)) { follower.status().lastDurableLSN == last }
                #expect(converged, "follower \(follower.status()), leader \(leader.status())")
                let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
                #expect(expected.count == 20)
                #expect(try ReplicationTestCluster.files(under: cluster.root + "/f1") == expected)
            }
        }
    }

    @Test func aFollowerCertificateFromAnotherCAIsRefused() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS(requireClientCertificate: true)
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { leader, port in
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: certificates.followerTLS(nodeID: "f1", issuer: .otherCA))
            #expect(lastError?.contains("the leader does not trust this follower's certificate") == true, "\(lastError ?? "no error")")
            #expect(leader.status().followers.isEmpty)
        }
    }

    @Test func anExpiredFollowerCertificateIsRefused() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS(requireClientCertificate: true)
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { leader, port in
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: certificates.followerTLS(nodeID: "f1", expired: true))
            #expect(lastError?.contains("it has expired") == true, "\(lastError ?? "no error")")
            #expect(leader.status().followers.isEmpty)
        }
    }

    @Test func aFollowerWhoseCertificateNamesAnotherNodeIsRefusedNamingBoth() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS(requireClientCertificate: true)
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { leader, port in
            let tls = try certificates.followerTLS(nodeID: "f1", certificateName: "f2")
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: tls)
            #expect(lastError?.contains("\"f1\"") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("\"f2\"") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("refused by the leader") == true, "\(lastError ?? "no error")")
            #expect(leader.status().followers.isEmpty)
        }
    }

    @Test func aFollowerRefusesALeaderCertificateFromAnotherCA() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS(requireClientCertificate: true, issuer: .otherCA)
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { leader, port in
            // Something to replicate, so that lastDurableLSN == 0 means the follower got nothing;
            // the follower's own certificate is good: only the leader's is wrong.
            try await Self.produce(leader, records: 200)
            let tls = try certificates.followerTLS(nodeID: "f1")
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: tls, connects: 3)
            #expect(lastError?.contains("TLS with the leader failed") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("the leader's certificate does not verify against tlsTrustedRootsFile (issued by another CA") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(lastError ?? "no error")")
            #expect(leader.status().followers.isEmpty, "\(leader.status())")
        }
    }

    /// The leader's certificate names only `elsewhere.example`; the follower dials it by
    /// address (checked against IP SANs) or by name (checked against DNS SANs).
    @Test(arguments: ["127.0.0.1", "localhost"])
    func aFollowerRefusesALeaderCertificateNamingAnotherHost(dialling host: String) async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS(requireClientCertificate: true, dnsNames: ["elsewhere.example"], ipAddresses: [])
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { leader, port in
            try await Self.produce(leader, records: 200)
            let tls = try certificates.followerTLS(nodeID: "f1")
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: tls, leaderHost: host, connects: 3)
            #expect(lastError?.contains("TLS with the leader failed") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("the leader's certificate does not name \"\(host)\", the follower's leaderHost") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("failedToValidateHostname") == true, "\(lastError ?? "no error")")
            if host == "localhost" { #expect(lastError?.contains("localhost") == true, "\(lastError ?? "no error")") }
            #expect(leader.status().followers.isEmpty, "\(leader.status())")
        }
    }

    @Test func aPlaintextFollowerToATLSLeaderIsToldTLSIsRequired() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        let leaderTLS = try certificates.leaderTLS()
        try await withLeader(cluster, configure: { $0.tls = leaderTLS }) { _, port in
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: nil)
            #expect(lastError?.contains("the leader requires TLS") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("refused by the leader") == true, "\(lastError ?? "no error")")
        }
    }

    @Test func aTLSFollowerToAPlaintextLeaderSaysSo() async throws {
        let cluster = try Workspace()
        let certificates = try TestCertificates(directory: cluster.root + "/tls")
        try await withLeader(cluster) { _, port in
            let lastError = try await Self.refusal(cluster, "f1", port: port, tls: certificates.followerTLS(nodeID: "f1"))
            #expect(lastError?.contains("TLS with the leader failed") == true, "\(lastError ?? "no error")")
            #expect(lastError?.contains("plaintext leader") == true, "\(lastError ?? "no error")")
        }
    }
}
