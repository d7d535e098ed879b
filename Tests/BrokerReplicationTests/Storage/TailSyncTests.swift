import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The follower's side of a full sync of multi-chunk files: it keeps the longest matching
/// prefix, reads only what its chunk index cannot vouch for, and asks only for what follows.
@Suite("Tail-only full sync")
struct TailSyncTests {
    static let mebibyte = ChunkIndex.chunkBytes

    /// One leader file and one follower file; plans, answers like a leader, installs.
    struct Round {
        var requests: [SyncRequest.File]
        /// Bytes of its own file the follower read to plan.
        var checked: Int
        /// Bytes the leader sent.
        var sent: Int
    }

    func sync(leader: [UInt8], follower: [UInt8]?, index: ChunkIndex = ChunkIndex(), in root: URL, touch: (URL) throws -> Void = { _ in }) throws -> Round {
        let leaderURL = root.appendingPathComponent("leader")
        let followerURL = root.appendingPathComponent("follower")
        try write(["queue/segment": leader], under: leaderURL)
        if let follower { try write(["queue/segment": follower], under: followerURL) }
        try touch(followerURL)
        let manifest = try FullSyncReceiverTests.makeManifest(try DataDirectory(path: leaderURL.path))
        var receiver = FullSyncReceiver(
            directory: try DataDirectory(path: followerURL.path), index: index, begin: SyncBegin(cutLSN: 1, fileCount: 1), limits: .default, durable: false
        )
        try receiver.addManifest(firstIndex: 0, entries: manifest)
        var checked = 0
        let requests = try receiver.planRequests { checked += $0 }
        var sent = 0
        for request in requests {
            for chunk in try FullSyncReceiverTests.chunks(of: leader, answering: request) {
                sent += Int(chunk.uncompressedBytes)
                try receiver.receive(chunk)
            }
        }
        try receiver.finish()
        #expect(try contents(followerURL.appendingPathComponent("queue/segment")) == leader, "the follower converges byte for byte")
        return Round(requests: requests, checked: checked, sent: sent)
    }

    @Test func aCopyThatIsAPrefixReceivesOnlyTheTail() throws {
        try withTemporaryRoot { root in
            let leader = bytes(3 * Self.mebibyte + 500_000, seed: 1)
            let round = try sync(leader: leader, follower: Array(leader.prefix(2 * Self.mebibyte + 123_456)), in: root)
            #expect(round.requests.map(\.offset) == [UInt64(2 * Self.mebibyte + 123_456)])
            #expect(round.sent == leader.count - (2 * Self.mebibyte + 123_456), "exactly the missing tail crosses")
        }
    }

    @Test func aDivergentTailIsTruncatedAtTheFirstDifferingChunk() throws {
        try withTemporaryRoot { root in
            // The follower holds the leader's first 2 MiB and then a tail the leader never had
            // (a former leader's unconfirmed writes after a failover).
            let leader = bytes(3 * Self.mebibyte + 10, seed: 2)
            let follower = Array(leader.prefix(2 * Self.mebibyte)) + bytes(Self.mebibyte + 900_000, seed: 3)
            let round = try sync(leader: leader, follower: follower, in: root)
            #expect(round.requests.map(\.offset) == [UInt64(2 * Self.mebibyte)])
            #expect(round.sent == Self.mebibyte + 10)
            #expect(round.checked == 3 * Self.mebibyte, "chunks 0 and 1 match, chunk 2 differs: the follower's chunk 3 is never read")
        }
    }

    @Test func aLongerCopyIsOnlyTruncated() throws {
        try withTemporaryRoot { root in
            let leader = bytes(Self.mebibyte + 77, seed: 4)
            let round = try sync(leader: leader, follower: leader + bytes(5000, seed: 5), in: root)
            #expect(round.requests.isEmpty && round.sent == 0)
        }
    }

    @Test func aMiddleChunkThatRottedIsFoundAndResent() throws {
        try withTemporaryRoot { root in
            let leader = bytes(4 * Self.mebibyte, seed: 6)
            let index = ChunkIndex()
            // A first sync indexes the follower's copy.
            _ = try sync(leader: leader, follower: nil, index: index, in: root)
            // A byte in chunk 2 changes in place: same size, a new modification time (set
            // explicitly: two writes within one clock tick of the file system share one).
            let round = try sync(leader: leader, follower: nil, index: index, in: root) { follower in
                let url = follower.appendingPathComponent("queue/segment")
                let handle = try FileHandle(forUpdating: url)
                try handle.seek(toOffset: UInt64(2 * Self.mebibyte + 4242))
                try handle.write(contentsOf: [leader[2 * Self.mebibyte + 4242] ^ 0x5A])
                try handle.close()
                try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: url.path)
            }
            #expect(round.requests.map(\.offset) == [UInt64(2 * Self.mebibyte)])
            #expect(round.sent == 2 * Self.mebibyte, "from the damaged chunk to the end")
        }
    }

    @Test func anIndexedUnchangedCopyIsNotReadAgain() throws {
        try withTemporaryRoot { root in
            let leader = bytes(3 * Self.mebibyte, seed: 7)
            let index = ChunkIndex()
            let first = try sync(leader: leader, follower: nil, index: index, in: root)
            #expect(first.sent == leader.count)
            let second = try sync(leader: leader, follower: nil, index: index, in: root)
            #expect(second.requests.isEmpty && second.checked == 0, "the index vouches for every chunk")
            // A restarted follower loads the index from .brpl/chunk-index.
            let stored = ChunkIndexFile(directory: try DataDirectory(path: root.appendingPathComponent("follower").path)).load()
            #expect(stored.problem == nil)
            let third = try sync(leader: leader, follower: nil, index: ChunkIndex(entries: stored.entries), in: root)
            #expect(third.requests.isEmpty && third.checked == 0)
        }
    }

    @Test func aPartialChunkTheLeaderDisagreesWithIsResentFromItsStart() throws {
        try withTemporaryRoot { root in
            let leader = bytes(Self.mebibyte + 300_000, seed: 8)
            var follower = Array(leader.prefix(Self.mebibyte + 100_000))
            follower[Self.mebibyte + 50] ^= 0xFF
            let round = try sync(leader: leader, follower: follower, in: root)
            #expect(round.requests.map(\.offset) == [UInt64(Self.mebibyte + 100_000)])
            #expect(round.sent == 300_000, "the leader checked the follower's partial chunk and sent from its start")
        }
    }

    @Test func theTrustRuleFollowsTheFilesIdentity() {
        let identity = ChunkIndex.Identity(device: 1, inode: 2, size: 3 * Self.mebibyte, modifiedNanoseconds: 100)
        let entry = ChunkIndex.Entry(identity: identity, chunks: [1, 2, 3])
        func trusted(_ change: (inout ChunkIndex.Identity) -> Void) -> Int {
            var current = identity
            change(&current)
            return ChunkIndex.trustedChunks(entry, current: current)
        }
        #expect(trusted { _ in } == 3)
        #expect(trusted { $0.size += 10; $0.modifiedNanoseconds += 1 } == 3, "appended")
        #expect(trusted { $0.modifiedNanoseconds += 1 } == 0, "written in place")
        #expect(trusted { $0.size -= 1; $0.modifiedNanoseconds += 1 } == 0, "shrank")
        #expect(trusted { $0.inode = 9; $0.size += 10 } == 0, "replaced")
        #expect(trusted { $0.device = 9 } == 0, "another file system")
    }

    @Test func aDamagedIndexFileReadsAsEmpty() throws {
        try withTemporaryRoot { root in
            let directory = try DataDirectory(path: root.path)
            let file = ChunkIndexFile(directory: directory)
            let entries = [ReplicatedPath(alreadyValidated: "a/b"): ChunkIndex.Entry(
                identity: .init(device: 1, inode: 2, size: 5, modifiedNanoseconds: -3), chunks: [7, 8]
            )]
            try file.store(entries)
            #expect(file.load().entries == entries)
            let url = root.appendingPathComponent(ChunkIndexFile.rawPath)
            var stored = try contents(url)
            stored[10] ^= 1
            try Data(stored).write(to: url)
            let damaged = file.load()
            #expect(damaged.entries.isEmpty && damaged.problem != nil)
        }
    }
}
