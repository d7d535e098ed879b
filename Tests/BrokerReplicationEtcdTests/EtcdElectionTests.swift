import BrokerReplication
import BrokerReplicationTesting
import Testing

@testable import BrokerReplicationEtcd

@Suite("EtcdElection", .serialized)
struct EtcdElectionTests {
    @Test("a lease TTL under 2 s is refused")
    func shortTTL() throws {
        #expect {
            try EtcdElection(endpoint: EtcdEndpoint(host: "127.0.0.1", port: 2379), nodeID: "a", leaseTTL: .milliseconds(1500))
        } throws: { error in
            (error as? ReplicationError)?.code == .invalidConfiguration && "\(error)".contains("leaseTTL")
        }
    }

    @Test("campaigning again while leading still wins; leader() returns the record")
    func campaignTwice() async throws {
        try await withEtcd { etcd in
            let a = try makeElection(etcd, prefix: uniquePrefix("twice"), nodeID: "a")
            #expect(a.leadershipDeadline() == nil)
            #expect(try await a.campaign(record("a")))
            let deadline = try #require(a.leadershipDeadline())
            #expect(deadline > .now)
            #expect(try await a.campaign(record("a")))
            #expect(try await a.leader() == record("a"))
        }
    }

    @Test("two candidates campaigning at once: exactly one wins, both see its record")
    func concurrentCampaign() async throws {
        try await withEtcd { etcd in
            for round in 0..<3 {
                let prefix = uniquePrefix("race\(round)")
                let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
                let b = try makeElection(etcd, prefix: prefix, nodeID: "b")
                async let aWon = a.campaign(record("a", port: 9000))
                async let bWon = b.campaign(record("b", port: 9100))
                let (wonA, wonB) = try await (aWon, bWon)
                #expect(wonA != wonB, "exactly one wins (round \(round))")
                let winner = wonA ? record("a", port: 9000) : record("b", port: 9100)
                #expect(try await a.leader() == winner)
                #expect(try await b.leader() == winner)
                #expect((a.leadershipDeadline() != nil) == wonA)
                #expect((b.leadershipDeadline() != nil) == wonB)
            }
        }
    }

    @Test("run() renews the lease: the deadline moves forward")
    func renewals() async throws {
        try await withEtcd { etcd in
            let a = try makeElection(etcd, prefix: uniquePrefix("renew"), nodeID: "a", leaseTTL: .seconds(3))
            #expect(try await a.campaign(record("a")))
            let first = try #require(a.leadershipDeadline())
            try await whileRunning(a) {
                let moved = try await eventually(within: .seconds(10)) {
                    (a.leadershipDeadline() ?? first) > first
                }
                #expect(moved)
                // Past the first lease's TTL, the leader key is still there.
                try await Task.sleep(for: .seconds(3.5))
                #expect(try await a.leader() == record("a"))
                #expect(try #require(a.leadershipDeadline()) > .now)
            }
        }
    }

    @Test("a lease revoked behind run()'s back ends the leadership within a few seconds")
    func leaseLoss() async throws {
        try await withEtcd { etcd in
            let a = try makeElection(etcd, prefix: uniquePrefix("loss"), nodeID: "a", leaseTTL: .seconds(3))
            #expect(try await a.campaign(record("a")))
            try await whileRunning(a) {
                try await revokeLeaderLease(of: a)
                let lost = try await eventually(within: .seconds(10)) { a.leadershipDeadline() == nil }
                #expect(lost)
                // A campaigns again with a new lease.
                #expect(try await a.campaign(record("a")))
                #expect(a.leadershipDeadline() != nil)
            }
        }
    }

    @Test("cancelling run() revokes the lease: another node wins at once")
    func cancelledRunRevokes() async throws {
        try await withEtcd { etcd in
            let prefix = uniquePrefix("cancel")
            let a = try makeElection(etcd, prefix: prefix, nodeID: "a")
            #expect(try await a.campaign(record("a")))
            try await whileRunning(a) {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(a.leadershipDeadline() == nil)
            let b = try makeElection(etcd, prefix: prefix, nodeID: "b")
            #expect(try await b.campaign(record("b")))
            #expect(try await a.leader() == record("b"))
        }
    }

    @Test("a frozen etcd: the deadline passes within the TTL; after it resumes, A leads again")
    func frozenEtcd() async throws {
        try await withEtcd { etcd in
            let ttl = Duration.seconds(2)
            let a = try makeElection(etcd, prefix: uniquePrefix("frozen"), nodeID: "a", leaseTTL: ttl, requestTimeout: .seconds(1))
            #expect(try await a.campaign(record("a")))
            try await whileRunning(a) {
                try await Task.sleep(for: .seconds(1))
                let paused = ContinuousClock.now
                etcd.pause()
                var resumed = false
                defer { if !resumed { etcd.resume() } }
                let deadline = try #require(a.leadershipDeadline())
                #expect(deadline <= paused + ttl)

                let passed = try await eventually(within: ttl + .seconds(1)) {
                    guard let current = a.leadershipDeadline() else { return true }
                    #expect(current <= paused + ttl)
                    return ContinuousClock.now > current
                }
                #expect(passed, "the deadline passed while etcd was frozen")
                etcd.resume()
                resumed = true

                let leads = try await eventually(within: .seconds(15)) {
                    guard (try? await a.campaign(record("a"))) == true else { return false }
                    guard let deadline = a.leadershipDeadline(), deadline > .now else { return false }
                    return (try? await a.leader()) == record("a")
                }
                #expect(leads, "A leads again after etcd resumed")
            }
        }
    }
}
