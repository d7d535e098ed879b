import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// Which followers of an earlier epoch hold exactly the files a new epoch starts from, and the
/// token bucket that paces catch-up traffic.
@Suite("Epoch history and catch-up pacing")
struct EpochHistoryTests {
    @Test func aFollowerLinesUpOnlyWithACleanEndAndEmptyEpochsAfterIt() {
        var history = EpochHistory()
        history.begin(3)
        history.end(3, lastLSN: 500, filesDigest: nil)
        history.begin(4)
        #expect(history.startsFrom(epoch: 3, lastLSN: 500, current: 4))
        #expect(!history.startsFrom(epoch: 3, lastLSN: 499, current: 4), "behind the end: lacks changes")
        #expect(!history.startsFrom(epoch: 3, lastLSN: 501, current: 4), "past the end: holds changes the leader never had")
        #expect(!history.startsFrom(epoch: 2, lastLSN: 0, current: 4), "an epoch not in the history")
        #expect(!history.startsFrom(epoch: 0, lastLSN: 0, current: 4), "no data at all")
        // Epoch 4 ends without a change: epoch 5 starts from the same files.
        history.end(4, lastLSN: 0, filesDigest: nil)
        history.begin(5)
        #expect(history.startsFrom(epoch: 3, lastLSN: 500, current: 5))
        #expect(history.startsFrom(epoch: 4, lastLSN: 0, current: 5))
        // Epoch 5 crashes (no end): epoch 6 knows nothing of what it wrote.
        history.begin(6)
        #expect(!history.startsFrom(epoch: 3, lastLSN: 500, current: 6))
        #expect(!history.startsFrom(epoch: 5, lastLSN: 0, current: 6))
    }

    @Test func filesChangedAfterTheEndVoidIt() {
        let files = [(path: ReplicatedPath(alreadyValidated: "a"), size: 10), (path: ReplicatedPath(alreadyValidated: "b/c"), size: 0)]
        var history = EpochHistory()
        history.begin(1)
        history.end(1, lastLSN: 9, filesDigest: EpochHistory.filesDigest(files))
        let sameFiles = history.checkLastEnd(againstFilesDigest: EpochHistory.filesDigest(files.reversed()))
        #expect(sameFiles, "order does not matter")
        let changedFiles = history.checkLastEnd(againstFilesDigest: EpochHistory.filesDigest([files[0]]))
        #expect(!changedFiles)
        history.begin(2)
        #expect(!history.startsFrom(epoch: 1, lastLSN: 9, current: 2))
    }

    @Test func theLeaderResumesAFollowerOfTheEndedEpochAtLSNOne() throws {
        var history = EpochHistory()
        history.begin(7)
        history.end(7, lastLSN: 40, filesDigest: nil)
        history.begin(8)
        let settings = LeaderSettings(epoch: 8, batchBytes: 1024, queueBytes: 1 << 20, queueFrames: 64, backlogBytes: 1 << 20, history: history)
        var machine = LeaderStateMachine<TestLink, Int>(settings: settings, files: [])
        let now = ContinuousClock.now
        func admit(_ id: UInt64, epoch: UInt64, lastDurableLSN: UInt64) -> LeaderStateMachine<TestLink, Int>.Admission {
            machine.admit(
                TestLink(id: id, nodeID: "f\(id)"), nodeID: "f\(id)", remoteAddress: "127.0.0.1:1",
                epoch: epoch, lastDurableLSN: lastDurableLSN, at: now, isAlive: { _ in true }
            ).admission
        }
        #expect(admit(1, epoch: 7, lastDurableLSN: 40) == .resume(nextLSN: 1))
        #expect(admit(2, epoch: 7, lastDurableLSN: 39) == .fullSync)
        #expect(machine.counters.epochResumes == 1 && machine.counters.fullSyncs == 1)
    }

    @Test func theBucketPacesToItsRateAfterItsBurst() {
        let start = ContinuousClock.now
        var bucket = TokenBucket(bytesPerSecond: 2_000_000, now: start)
        #expect(bucket.take(200_000, now: start) == .zero, "a tenth of a second's worth goes at once")
        let wait = bucket.take(1_000_000, now: start)
        #expect(wait == .milliseconds(500), "a megabyte at 2 MB/s")
        // After waiting it out, the next take waits for its own bytes only.
        #expect(bucket.take(100_000, now: start + .milliseconds(500)) == .milliseconds(50))
        // Idle time refills at most the burst.
        #expect(bucket.take(200_000, now: start + .seconds(60)) == .zero)
        #expect(bucket.take(2_000, now: start + .seconds(60)) == .milliseconds(1))
    }
}
