import BrokerReplicationTesting
import HeavyTestGate
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// What unauthenticated peers and long uptimes can make the leader hold stays bounded:
/// connections in their handshake, open file descriptors, and the rate-limited log's keys.
@Suite("Resource bounds", .serialized, .heavy)
struct ResourceBoundsTests {
    /// Descriptors this process has open now (the leader, its followers and the test share it).
    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }

    /// This process's resident set in KiB (from /proc/self/status), 0 when unknown.
    static func residentKiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Descriptors that other work in this process (light tests running in parallel, the
    /// runtime) may open on top of the bound being checked.
    static let descriptorMargin = 64

    /// Runs `body` with a serving leader that logs to `handler`.
    func withLoggedLeader(
        _ cluster: ReplicationTestCluster.Workspace,
        handler: CapturingLogHandler,
        configure: (inout ReplicationLeaderConfiguration) -> Void,
        _ body: (ReplicationLeader, Int) async throws -> Void
    ) async throws {
        var configuration = cluster.leaderConfiguration()
        configure(&configuration)
        let leader = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: Logger(label: "test") { _ in handler })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await leader.run() }
            let port = try await leader.listeningPort()
            defer { group.cancelAll() }
            try await body(leader, port)
        }
    }

    // MARK: Connections in their handshake

    /// Connections that never send a hello fill the handshake cap; the ones beyond it are
    /// closed at once with a warning naming the cap. A real follower is refused while the cap
    /// is full and connects once the idle ones time out; a streaming follower does not count.
    @Test func connectionsBeyondTheHandshakeCapAreClosedAtOnce() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let handler = CapturingLogHandler()
        let cap = 8
        try await withLoggedLeader(cluster, handler: handler, configure: {
            $0.maximumHandshakingConnections = cap
            $0.handshakeTimeout = .seconds(10)
        }) { leader, port in
            let peak = Mutex((handshaking: 0, open: 0))
            func sample() {
                let now = (leader.handshakingConnectionCount, leader.openConnectionCount)
                peak.withLock { $0 = (max($0.handshaking, now.0), max($0.open, now.1)) }
            }
            // A connect on loopback returns as soon as the kernel queued it: nothing here blocks.
            let idle = try (0..<(3 * cap)).map { _ in try RawFollower(port: port) }
            let idleOpenedAt = ContinuousClock.now
            let settled = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(8)) {
                sample()
                return leader.handshakingConnectionCount == cap && idle.filter { $0.isClosedByPeer() }.count == 2 * cap
            }
            let closed = idle.filter { $0.isClosedByPeer() }.count
            print("handshake cap \(cap): \(closed) of \(idle.count) idle connections closed at once, peak \(peak.withLock { $0 }) handshaking/open")
            #expect(settled, "handshaking \(leader.handshakingConnectionCount), closed \(closed) of \(idle.count)")
            #expect(peak.withLock { $0.handshaking } <= cap && peak.withLock { $0.open } <= cap, "peak \(peak.withLock { $0 })")
            let warnings = handler.records.withLock { $0.filter { $0.message.contains("maximumHandshakingConnections") } }
            #expect(!warnings.isEmpty && warnings.count < 2 * cap, "\(warnings.count) warnings for \(2 * cap) closed connections")
            #expect(warnings.first?.message.contains("(\(cap))") == true, "\(warnings.first?.message ?? "no warning")")

            // A real follower while the cap is full: refused (closed) until the idle ones time out.
            let capStillFull = ContinuousClock.now - idleOpenedAt < .seconds(8)
            try await withFollower(cluster, "f", port: port) { follower in
                let streaming = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(60)) {
                    sample()
                    return follower.status().phase == .streaming
                }
                #expect(streaming, "\(follower.status())")
                if capStillFull { #expect(follower.status().connects > 1, "the first attempts met a full cap") }
                #expect(idle.allSatisfy { $0.isClosedByPeer() }, "the idle connections timed out")

                // Streaming followers do not count: the cap admits `cap` more handshakes, and no more.
                let more = try (0..<(cap + 1)).map { _ in try RawFollower(port: port) }
                let full = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(8)) {
                    sample()
                    return leader.handshakingConnectionCount == cap && more.filter { $0.isClosedByPeer() }.count == 1
                }
                #expect(full, "handshaking \(leader.handshakingConnectionCount), open \(leader.openConnectionCount)")
                #expect(leader.openConnectionCount == cap + 1, "the follower and \(cap) handshakes")
                #expect(peak.withLock { $0.handshaking } <= cap, "peak \(peak.withLock { $0 })")

                // And the follower still replicates.
                let lsn = try await leader.append(to: "after-the-cap", bytes: Array("still replicating".utf8))
                let caughtUp = try await ReplicationTestCluster.Workspace.eventually { follower.status().lastDurableLSN >= lsn }
                #expect(caughtUp, "\(follower.status())")
            }
        }
    }

    // MARK: Writer file handles

    /// Appends to 2,000 files keep at most `maximumOpenFiles` writer descriptors open (plus a
    /// margin); handles closed in between reopen at the right size, so a second round of
    /// appends to every file lands where it should, on the leader and on a follower.
    @Test func twoThousandFilesKeepTheOpenDescriptorsBounded() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let files = 2_000
        let baseline = Self.openDescriptors()
        try await withLeader(cluster) { leader, port in
            let bound = leader.configuration.maximumOpenFiles
            var peak = 0
            for index in 0..<files {
                try await leader.append(to: "files/\(index)", bytes: Array("first \(index)\n".utf8))
                if index % 50 == 49 {
                    peak = max(peak, Self.openDescriptors())
                    await Task.yield()
                }
            }
            peak = max(peak, Self.openDescriptors())
            print("\(files) files written: peak \(peak - baseline) descriptors above the baseline of \(baseline) (maximumOpenFiles \(bound))")
            #expect(peak - baseline <= bound + Self.descriptorMargin, "\(peak - baseline) descriptors above the baseline")
            // And the leader remembers the writers it holds open, not one per file ever written.
            #expect(leader.core.writers.count <= bound, "\(leader.core.writers.count) writers kept for \(files) files")

            try await withFollower(cluster, "f", port: port) { follower in
                // Second round while the follower streams: most handles were closed and reopen now.
                let synced = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) { follower.status().phase == .streaming }
                #expect(synced, "\(follower.status())")
                for index in 0..<files {
                    try await leader.append(to: "files/\(index)", bytes: Array("second \(index)\n".utf8))
                    if index % 50 == 49 { await Task.yield() }
                }
                let last = leader.lastLSN
                let converged = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120)) { follower.status().lastDurableLSN == last }
                #expect(converged, "\(follower.status())")
                print("after the second round with a follower: \(Self.openDescriptors() - baseline) descriptors above the baseline")
            }
            let expected = try ReplicationTestCluster.files(under: cluster.root + "/leader")
            #expect(expected.count == files)
            for index in [0, 1, files / 2, files - 1] {
                let bytes = expected["files/\(index)"].map { String(decoding: $0, as: UTF8.self) }
                #expect(bytes == "first \(index)\nsecond \(index)\n")
            }
            let wrong = expected.filter { path, data in String(decoding: data, as: UTF8.self) != "first \(path.dropFirst(6))\nsecond \(path.dropFirst(6))\n" }
            #expect(wrong.isEmpty, "\(wrong.count) leader files hold the wrong bytes, e.g. \(wrong.keys.sorted().prefix(3))")
            let copy = try ReplicationTestCluster.files(under: cluster.root + "/f")
            #expect(copy == expected, "the follower differs: \(Set(copy.keys).symmetricDifference(expected.keys).count) paths, \(copy.filter { expected[$0.key] != $0.value }.count) contents")
        }
    }

    // MARK: Many handshakes

    /// 10,000 handshakes with random cluster and node ids, each then closed: half name a
    /// wrong cluster (the leader refuses them), half the right one and then refuse the
    /// leader's challenge. Each warning's key carries those ids. Afterwards the leader holds
    /// no more descriptors than before (plus a margin), its handshakes never exceeded the
    /// cap, and its rate-limited log kept at most its bound of keys.
    @Test func tenThousandHandshakesWithRandomIdsLeaveDescriptorsAndLogKeysBounded() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let total = 10_000
        let threadCount = 8
        let baseline = Self.openDescriptors()
        let residentBefore = Self.residentKiB()
        try await withLeader(cluster) { leader, port in
            let cap = leader.configuration.maximumHandshakingConnections
            let started = ContinuousClock.now
            let finished = Atomic<Int>(0)
            let refusals = Atomic<Int>(0)
            let challenges = Atomic<Int>(0)
            let closedEarly = Atomic<Int>(0)
            let threads = (0..<threadCount).map { thread in
                Thread {
                    for index in stride(from: thread, to: total, by: threadCount) {
                        defer { finished.add(1, ordering: .relaxed) }
                        // Each thread stops after 120 s, whatever happened.
                        if ContinuousClock.now - started > .seconds(120) { continue }
                        do {
                            let raw = try RawFollower(port: port)
                            let random = UInt64.random(in: 0...UInt64.max)
                            let clusterID = index % 2 == 0 ? "cluster-\(random)" : cluster.clusterID
                            var opening = ByteBuffer()
                            FrameParser.writePreamble(to: &opening)
                            let nonce = HandshakeProof.makeNonce()
                            WireMessage.hello(Hello(clusterID: clusterID, nodeID: "node-\(random)", followerNonce: nonce)).write(to: &opening)
                            try raw.send(opening)
                            switch try raw.receive() {
                            case .refusal:
                                refusals.add(1, ordering: .relaxed)
                            case .challenge(let challenge):
                                challenges.add(1, ordering: .relaxed)
                                raw.useKeys(secret: cluster.secret, followerNonce: nonce, leaderNonce: challenge.leaderNonce)
                                try raw.send(.refusal(Refusal(code: .authenticationFailed, reason: "random follower \(random)")))
                                // Let the leader close first, so it has read the refusal.
                                _ = try raw.receive()
                            default:
                                closedEarly.add(1, ordering: .relaxed)
                            }
                        } catch {
                            closedEarly.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
            let peak = Mutex((handshaking: 0, descriptors: 0))
            for thread in threads { thread.start() }
            let done = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(150)) {
                let now = (leader.handshakingConnectionCount, Self.openDescriptors())
                peak.withLock { $0 = (max($0.handshaking, now.0), max($0.descriptors, now.1)) }
                return finished.load(ordering: .relaxed) == total
            }
            let elapsed = ContinuousClock.now - started
            #expect(done, "\(finished.load(ordering: .relaxed)) of \(total) handshakes finished")
            let cleaned = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(30)) {
                leader.openConnectionCount == 0 && Self.openDescriptors() <= baseline + Self.descriptorMargin
            }
            let after = Self.openDescriptors()
            let keys = leader.repeatedWarnings.keyCount
            let (peakHandshaking, peakDescriptors) = peak.withLock { $0 }
            print(
                """
                \(total) handshakes in \(elapsed): \(refusals.load(ordering: .relaxed)) refused, \(challenges.load(ordering: .relaxed)) challenged and refused back, \
                \(closedEarly.load(ordering: .relaxed)) closed early; descriptors \(baseline) before, peak \(peakDescriptors), \(after) after; \
                peak \(peakHandshaking) handshaking (cap \(cap)); \(keys) rate-limited-log keys; \
                resident \(residentBefore / 1024) MiB before, \(Self.residentKiB() / 1024) MiB after
                """
            )
            #expect(refusals.load(ordering: .relaxed) + challenges.load(ordering: .relaxed) >= total / 2, "most handshakes got an answer")
            #expect(cleaned, "\(leader.openConnectionCount) connections open, \(after) descriptors (baseline \(baseline))")
            #expect(peakHandshaking <= cap)
            #expect(peakDescriptors - baseline <= cap + threadCount + Self.descriptorMargin, "peak \(peakDescriptors), baseline \(baseline)")
            #expect(keys <= RateLimitedLog.defaultMaximumKeys, "\(keys) keys in the leader's rate-limited log")
        }
    }
}
