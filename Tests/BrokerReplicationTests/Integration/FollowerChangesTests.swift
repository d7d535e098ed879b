import BrokerReplicationTesting
import HeavyTestGate
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// `ReplicationFollower.changes()`: a broker on a hot standby sees every durable change in LSN
/// order, a full sync as one event, and every stream ends with `run()`.
@Suite("Follower changes", .serialized, .heavy)
struct FollowerChangesTests {
    typealias Reader = StreamReader<FollowerChange>

    /// What the leader's writes should look like on the follower: kind and LSN.
    struct Expected: Equatable, CustomStringConvertible {
        let kind: FollowerChange.Kind
        let lsn: UInt64
        var description: String { "\(lsn): \(kind)" }
    }

    /// Appends, replaces (one of several chunks) and deletes, with what each should publish.
    static func write(_ leader: ReplicationLeader, round: Int, sizes: inout [String: UInt64]) async throws -> [Expected] {
        var expected: [Expected] = []
        for index in 0..<30 {
            let path = "queues/q\(index % 3)/segment.\(round)"
            let bytes = Array(repeating: UInt8(truncatingIfNeeded: index), count: 10 + index)
            let lsn = try await leader.append(to: path, bytes: bytes)
            expected.append(Expected(kind: .appended(path: path, offset: sizes[path, default: 0], length: bytes.count), lsn: lsn))
            sizes[path, default: 0] += UInt64(bytes.count)
        }
        // 40 KiB in chunks of 16 KiB: three records, one change at the last.
        let large = "index/large.\(round)"
        let largeLSN = try await leader.replace(large, contents: Array(repeating: 7, count: 40 * 1024))
        expected.append(Expected(kind: .replaced(path: large, length: 40 * 1024), lsn: largeLSN))
        let small = "index/small.\(round)"
        let smallLSN = try await leader.replace(small, contents: Array("checkpoint \(round)".utf8))
        expected.append(Expected(kind: .replaced(path: small, length: UInt64("checkpoint \(round)".utf8.count)), lsn: smallLSN))
        let deleted = "queues/q0/segment.\(round)"
        let deleteLSN = try await leader.delete(deleted)
        sizes[deleted] = nil
        expected.append(Expected(kind: .deleted(path: deleted), lsn: deleteLSN))
        return expected
    }

    /// Polls `condition` until it holds; fails the test after a generous deadline.
    static func waitUntil(_ what: String, _ condition: () throws -> Bool) async throws {
        let held = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(120), condition)
        try #require(held, "timed out waiting until \(what)")
    }

    @Test("a follower's change stream delivers every durable change in LSN order and a full-sync event", arguments: [
        ReplicationFollowerConfiguration.Durability.fsync, .none,
    ])
    func everyDurableChangeInLSNOrderAfterAFullSync(durability: ReplicationFollowerConfiguration.Durability) async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        try await withLeader(cluster, configure: { $0.chunkBytes = 16 * 1024 }) { leader, port in
            var sizes: [String: UInt64] = [:]
            // Written before the follower exists: it arrives by a full sync, not as changes.
            var expected = try await Self.write(leader, round: 0, sizes: &sizes)
            var configuration = cluster.followerConfiguration("f1", port: port)
            configuration.durability = durability
            let follower = try ReplicationFollower(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
            // Subscribed before run(), so the full sync is seen too.
            let first = Reader(follower.changes())
            let second = Reader(follower.changes())
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await follower.run() }
                try await Self.waitUntil("the follower installs its full sync") {
                    first.elements.contains { $0.kind == .fullSyncInstalled }
                }
                for round in 1...3 { expected += try await Self.write(leader, round: round, sizes: &sizes) }
                let last = leader.lastLSN
                try await Self.waitUntil("both streams reach the leader's last LSN \(last)") {
                    [first, second].allSatisfy { $0.elements.last?.lsn == last }
                }
                #expect(follower.status().lastDurableLSN == last)
                let changes = first.elements
                #expect(second.elements == changes, "every subscriber gets every change")
                #expect(changes.first?.kind == .fullSyncInstalled, "nothing before the full sync: \(changes.prefix(3))")
                // Usually one full sync; on a starved machine a slow one may be evicted and run again.
                let sync = try #require(changes.lastIndex { $0.kind == .fullSyncInstalled })
                let cut = changes[sync].lsn
                let afterSync = Array(changes[(sync + 1)...])
                #expect(afterSync.map { Expected(kind: $0.kind, lsn: $0.lsn) } == expected.filter { $0.lsn > cut })
                #expect(zip(afterSync, afterSync.dropFirst()).allSatisfy { $0.lsn < $1.lsn }, "strictly increasing LSNs")
                #expect(afterSync.first.map { $0.lsn > cut } ?? true)
                #expect(zip(changes, changes.dropFirst()).allSatisfy { $0.sequenceNumber + 1 == $1.sequenceNumber }, "nothing dropped")
                #expect(Set(changes.map(\.epoch)) == [leader.status().epoch])
                group.cancelAll()
            }
            try await Self.waitUntil("both streams end with run()") { first.hasEnded && second.hasEnded }
            var afterTheEnd = follower.changes().makeAsyncIterator()
            let next = await afterTheEnd.next()
            #expect(next == nil, "a stream asked for after the end is already finished")
        }
    }
}

/// `FollowerChanges` without sockets: what waits for the group commit, and what a slow reader loses.
@Suite("Follower change log")
struct FollowerChangeLogTests {
    static func append(_ path: String, at offset: UInt64, _ count: Int) throws -> ReplicationRecord {
        .append(path: try ReplicatedPath(path), offset: offset, bytes: ByteBuffer(repeating: 1, count: count))
    }

    @Test func changesWaitForTheGroupCommitThatCoversThem() async throws {
        let log = FollowerChanges()
        var stream = log.subscribe(bufferingNewest: 16).makeAsyncIterator()
        let path = try ReplicatedPath("data/file")
        log.applied([
            try Self.append("data/a", at: 0, 5),
            .replace(path: path, offset: 0, chunk: ByteBuffer(repeating: 2, count: 4), flags: .firstChunk),
            .replace(path: path, offset: 4, chunk: ByteBuffer(repeating: 2, count: 3), flags: .lastChunk),
            .delete(path: try ReplicatedPath("data/a")),
        ], firstLSN: 10)
        log.durable(through: 11, epoch: 2)
        let appended = await stream.next()
        #expect(appended == FollowerChange(kind: .appended(path: "data/a", offset: 0, length: 5), epoch: 2, lsn: 10, sequenceNumber: 1))
        log.durable(through: 13, epoch: 2)
        let replaced = await stream.next()
        #expect(replaced == FollowerChange(kind: .replaced(path: "data/file", length: 7), epoch: 2, lsn: 12, sequenceNumber: 2))
        let deleted = await stream.next()
        #expect(deleted == FollowerChange(kind: .deleted(path: "data/a"), epoch: 2, lsn: 13, sequenceNumber: 3))
        // Applied, never durable, then a full sync: only the sync is published.
        log.applied([try Self.append("data/b", at: 0, 1)], firstLSN: 14)
        log.fullSyncInstalled(epoch: 3, lsn: 20)
        log.durable(through: 20, epoch: 3)
        let sync = await stream.next()
        #expect(sync == FollowerChange(kind: .fullSyncInstalled, epoch: 3, lsn: 20, sequenceNumber: 4))
        log.finish()
        let afterFinish = await stream.next()
        #expect(afterFinish == nil)
    }

    @Test func aSlowReaderLosesTheOldestAndSeesAGapInSequenceNumbers() async throws {
        let log = FollowerChanges()
        var stream = log.subscribe(bufferingNewest: 2).makeAsyncIterator()
        log.applied(try (0..<5).map { try Self.append("data/a", at: UInt64($0), 1) }, firstLSN: 1)
        log.durable(through: 5, epoch: 1)
        log.finish()
        var seen: [FollowerChange] = []
        while let change = await stream.next() { seen.append(change) }
        #expect(seen.map(\.sequenceNumber) == [4, 5], "the newest two are kept")
        #expect(seen.map(\.lsn) == [4, 5])
    }

    @Test func nothingIsKeptWhileNobodyListens() async throws {
        let log = FollowerChanges()
        log.applied([try Self.append("data/a", at: 0, 1)], firstLSN: 1)
        var stream = log.subscribe(bufferingNewest: 4).makeAsyncIterator()
        log.applied([try Self.append("data/a", at: 1, 1)], firstLSN: 2)
        log.durable(through: 2, epoch: 1)
        log.finish()
        let listened = await stream.next()
        #expect(listened?.lsn == 2)
        let afterTheEnd = await stream.next()
        #expect(afterTheEnd == nil)
    }
}
