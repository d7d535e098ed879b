import Foundation
import HeavyTestGate
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `mini-broker node` as a three-node HA cluster: real processes, a real etcd electing the
/// leader, publishers waiting for confirms over HTTP.
@Suite("HA cluster with etcd", .serialized, .heavy)
struct ClusterFailoverProcessTests {
    let names = ["n1", "n2", "n3"]
    let ttl = Duration.seconds(MiniBrokerCluster.leaseTTL)

    /// Starts every node and waits for one leader with the two others in its in-sync set.
    func electedCluster() async throws -> (MiniBrokerCluster, String) {
        let cluster = try await MiniBrokerCluster(nodeNames: names)
        do {
            for name in names { try cluster.start(name) }
            var elected: String?
            try await waitUntil("one leader, the two others in its in-sync set", brokers: cluster.running) {
                guard let leader = cluster.leader(among: names), cluster.status(leader)?.leaderStatus?.isr.count == 2 else { return false }
                elected = leader
                return true
            }
            return (cluster, try #require(elected))
        } catch {
            cluster.tearDown()
            throw error
        }
    }

    /// SIGKILL the leader while a client publishes with confirms: an in-sync follower leads
    /// within the lease TTL plus 5 s and holds every confirmed message; the other follower
    /// follows it and converges. The killed node rejoins as a follower, drops what was never
    /// confirmed, and converges too. A leader stopped with SIGTERM resigns for a follower.
    @Test func aKilledLeaderIsReplacedByAnInSyncFollowerThatHoldsEveryConfirmedMessage() async throws {
        let (cluster, oldLeader) = try await electedCluster()
        defer { cluster.tearDown() }
        let others = names.filter { $0 != oldLeader }

        let misdirected = try #require(cluster.publish([1], to: "orders", on: others[0]))
        #expect(misdirected.status == 421, "\(misdirected)")
        #expect(misdirected.body.contains(#""leader":"\#(oldLeader)""#), "\(misdirected)")
        #expect(misdirected.body.contains(#""leaderHTTP":"127.0.0.1:\#(cluster.node(oldLeader).httpPort)""#), "\(misdirected)")

        let publisher = Publisher(port: cluster.node(oldLeader).httpPort, tag: "before")
        let publishing = publisher.start()
        try await waitUntil("200 messages are confirmed", brokers: cluster.running) { publisher.confirmedCount >= 200 }
        try await cluster.kill(oldLeader)
        let killedAt = ContinuousClock.now
        await publishing.value
        let confirmed = publisher.confirmed

        var newLeader: String?
        try await waitUntil("an in-sync follower leads within the lease TTL + 5 s", brokers: cluster.running, within: ttl + .seconds(5)) {
            newLeader = others.first { cluster.status($0)?.role == "leader" }
            return newLeader != nil
        }
        let leader = try #require(newLeader)
        let tookOver = ContinuousClock.now - killedAt
        print("failover measurement: SIGKILL of the leader to a new leader's status: \(tookOver) (lease TTL \(ttl))")
        let follower = others.first { $0 != leader }!
        try await waitUntil("\(follower) follows \(leader)", brokers: cluster.running) {
            cluster.status(follower).map { $0.role == "follower" && $0.leader == leader } ?? false
        }

        // Every confirmed message is in the new leader's segments, in order, before anything else.
        let takenOver = try dataFiles(under: cluster.dataDirectory(leader))
        for (queue, messages) in confirmed {
            let records = queueRecords(queue, in: takenOver)
            #expect(records.starts(with: messages), "\(queue): \(messages.count) confirmed, the new leader holds \(records.count) records that do not start with them (took over after \(tookOver))")
        }

        let after = Publisher(port: cluster.node(leader).httpPort, tag: "after")
        await after.start(limit: 60).value
        #expect(after.confirmedCount == 60, "\(after.all.filter { $0.status != 200 }.prefix(3).map { "\($0.status.map(String.init) ?? "no answer")" })\n\(cluster.logs())")
        try await waitUntil("\(follower) holds exactly \(leader)'s files", brokers: cluster.running) {
            try dataFiles(under: cluster.dataDirectory(follower)) == dataFiles(under: cluster.dataDirectory(leader))
        }

        try cluster.start(oldLeader)
        try await waitUntil("the restarted \(oldLeader) follows \(leader) with exactly its files", brokers: cluster.running) {
            guard let status = cluster.status(oldLeader), status.role == "follower", status.leader == leader else { return false }
            return try dataFiles(under: cluster.dataDirectory(oldLeader)) == dataFiles(under: cluster.dataDirectory(leader))
        }

        // SIGTERM: the leader resigns once its followers hold everything, and one of them leads.
        cluster.signal(leader, SIGTERM)
        let terminatedAt = ContinuousClock.now
        var handedOver: Duration?
        try await waitUntil("a follower takes over from the resigning \(leader)", brokers: cluster.running.filter { $0.name.hasPrefix(follower) || $0.name.hasPrefix(oldLeader) }) {
            guard [follower, oldLeader].contains(where: { cluster.status($0)?.role == "leader" }) else { return false }
            handedOver = ContinuousClock.now - terminatedAt
            return true
        }
        print("failover measurement: SIGTERM of the leader to a new leader's status: \(handedOver ?? .zero) (lease TTL \(ttl))")
        let status = try await cluster.processes[leader]?.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "\(leader) did not exit with 0 after SIGTERM\n\(cluster.logs())")
        #expect(cluster.processes[leader]?.logTail(lines: 400).contains("resigned the leadership") == true)
        try await waitUntil("the two others agree on the new leader", brokers: cluster.running) {
            cluster.leader(among: [follower, oldLeader]) != nil
        }
        for name in [follower, oldLeader] { cluster.signal(name, SIGTERM) }
        for name in [follower, oldLeader] {
            let exit = try await cluster.processes[name]?.waitForExit(timeout: .seconds(20))
            #expect(exit == 0, "\(name) did not exit with 0 after SIGTERM\n\(cluster.logs())")
        }
    }

    /// With etcd frozen for longer than the lease, the leader stops confirming within the lease
    /// TTL (no request sent later is confirmed), and service resumes once etcd is back.
    @Test func aLeaderCutOffFromEtcdStopsConfirmingWithinTheLeaseAndServiceResumes() async throws {
        let (cluster, leader) = try await electedCluster()
        defer { cluster.tearDown() }
        let publisher = Publisher(port: cluster.node(leader).httpPort, tag: "frozen")
        let publishing = publisher.start()
        try await waitUntil("50 messages are confirmed", brokers: cluster.running) { publisher.confirmedCount >= 50 }

        cluster.etcd.pause()
        let frozenAt = ContinuousClock.now
        try await waitUntil("the leader steps down", brokers: cluster.running, within: ttl + .seconds(5)) {
            cluster.status(leader)?.role == "candidate"
        }
        print("failover measurement: etcd frozen to the leader's step-down seen in its status: \(ContinuousClock.now - frozenAt) (lease TTL \(ttl))")
        try await Task.sleep(for: ttl)
        let lateConfirms = publisher.all.filter { $0.status == 200 && $0.sentAt > frozenAt + ttl }
        #expect(lateConfirms.isEmpty, "\(lateConfirms.count) requests sent more than the lease TTL after etcd froze were confirmed")
        #expect(publisher.all.contains { $0.sentAt > frozenAt + ttl && $0.status == 503 }, "the stepped-down leader answers 503")
        publisher.stop()
        await publishing.value

        cluster.etcd.resume()
        var resumed: String?
        try await waitUntil("a leader confirms again after etcd is back", brokers: cluster.running) {
            guard let leader = cluster.leader(among: names) else { return false }
            guard cluster.publish(Array("after the freeze".utf8), to: "orders", on: leader)?.status == 200 else { return false }
            resumed = leader
            return true
        }
        let files = try dataFiles(under: cluster.dataDirectory(try #require(resumed)))
        for (queue, messages) in publisher.confirmed {
            #expect(queueRecords(queue, in: files).starts(with: messages), "\(queue) lost confirmed messages")
        }
    }

    /// A follower that left the in-sync set does not lead, even when it is the only node left;
    /// it follows the member that comes back.
    @Test func aNodeOutsideTheInSyncSetDoesNotBecomeLeader() async throws {
        let cluster = try await MiniBrokerCluster(nodeNames: names)
        defer { cluster.tearDown() }
        try cluster.start("n1")
        try await waitUntil("n1 leads", brokers: cluster.running) { cluster.status("n1")?.role == "leader" }
        try cluster.start("n2")
        try cluster.start("n3")
        try await waitUntil("n2 and n3 are in n1's in-sync set", brokers: cluster.running) {
            cluster.status("n1")?.leaderStatus?.isr == ["n2", "n3"]
        }

        // n3 freezes and is evicted while messages keep coming.
        cluster.signal("n3", SIGSTOP)
        let publisher = Publisher(port: cluster.node("n1").httpPort, tag: "isr")
        let publishing = publisher.start()
        try await waitUntil("n3 leaves the in-sync set", brokers: cluster.running) {
            cluster.status("n1")?.leaderStatus?.isr == ["n2"]
        }
        publisher.stop()
        await publishing.value

        // The leader dies and the only member freezes: n3 is all that runs.
        try await cluster.kill("n1")
        cluster.signal("n2", SIGSTOP)
        cluster.signal("n3", SIGCONT)
        let waitUntilOnlyN3Could = ContinuousClock.now + ttl + .seconds(5)
        while ContinuousClock.now < waitUntilOnlyN3Could {
            let status = cluster.status("n3")
            #expect(status?.role != "leader", "n3 leads though it left the in-sync set\n\(cluster.logs())")
            if status?.role == "leader" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let refused = cluster.status("n3")
        #expect(refused?.role == "candidate" && refused?.notEligible?.contains("in-sync set") == true, "\(String(describing: refused))")

        cluster.signal("n2", SIGCONT)
        try await waitUntil("n2 leads and n3 follows it with n2's files", brokers: cluster.running) {
            guard cluster.leader(among: ["n2", "n3"]) == "n2" else { return false }
            return try dataFiles(under: cluster.dataDirectory("n3")) == dataFiles(under: cluster.dataDirectory("n2"))
        }
    }
}
