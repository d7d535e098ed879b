import HeavyTestGate
import BrokerReplicationTesting
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Disk trouble on one follower, under load, with real file systems: a full disk (a 2 MiB
/// tmpfs) and a read-only one. The follower says what went wrong, never acks what it did not
/// persist, the leader evicts it with reason `disk-error` and loses nothing, the other follower
/// keeps up, and once the disk is fixed the follower converges.
///
/// The tests mount tmpfs file systems, which needs root (CI and the dev containers run as
/// root). Without root the full-disk test is skipped (nothing else can limit a directory's
/// space), and the read-only test falls back to a directory made read-only with `chmod 0555`;
/// each prints which it used.
@Suite("Chaos: follower disk trouble", .serialized, .heavy)
struct ChaosDiskTests {
    static let isRoot = geteuid() == 0

    /// A 2 MiB tmpfs under a follower that is sent about 3.5 MB: the follower hits ENOSPC,
    /// reports it, and is evicted with `disk-error`; growing the tmpfs lets it converge.
    @Test(.enabled(if: isRoot, "mounting a tmpfs needs root; no other way to fill a disk here"))
    func aFollowerWhoseDiskFillsUpIsEvictedAndConvergesOnceThereIsRoom() async throws {
        let log = LogRecorder()
        try await ReplicationTestCluster.run(followers: ["healthy"], logger: log.logger) { cluster in
            let directory = cluster.dataDirectory("disk")
            let mount = try ScratchMount.tmpfs(at: directory, options: "size=2m")
            print("disk full: follower data directory on \(mount) (2 MiB)")
            try await withDiskFollower(cluster, "disk", log: log, cleanup: { mount.unmount() }) { follower, watch in
                try await waitUntilLive(cluster, ["healthy", "disk"])
                let loadStarted = ContinuousClock.now
                let workload = try await Workload.run(cluster.leader, producers: 2, records: 30_000, prefix: { "p\($0)" })
                #expect(workload.totalBytes > 3 << 20, "the load (\(workload.totalBytes) bytes) must not fit in 2 MiB")

                try await waitForDiskErrorEviction(cluster, log: log)
                let evictedAfter = ContinuousClock.now - loadStarted
                try await expectNothingLostAndTheOtherFollowerKeepsUp(cluster, workload, log: log)
                let seen = watch.snapshot()
                // Checked while the follower keeps retrying on the full disk: its files do not change
                // then, since a full sync installs nothing until every file it needs has arrived.
                let persisted = try expectNoAckBeyondWhatIsPersisted(directory, workload, seen)
                #expect(seen.errors.contains { $0.contains("No space left on device (errno 28)") }, "follower errors: \(seen.errors)")
                let eviction = log.lines(containing: "reason=disk-error").first ?? ""
                #expect(eviction.contains("reason=disk-error") && eviction.contains("No space left on device"), "\(eviction)")

                // Fixed: the tmpfs grows, and the follower converges by itself.
                try mount.remount(options: "size=64m")
                let fixedAt = ContinuousClock.now
                try await cluster.waitUntil("the follower converges once the disk has room") {
                    follower.status().lastDurableLSN >= workload.lastLSN
                }
                #expect(try ReplicationTestCluster.files(under: directory) == ReplicationTestCluster.files(under: cluster.dataDirectory("leader")))
                let status = follower.status()
                print(
                    "disk full: \(workload.records) records, \(workload.totalBytes) bytes; evicted (disk-error) \(evictedAfter) after the load started; highest ack seen by the leader LSN \(seen.highestAck), its files held every record through LSN \(persisted); converged \(ContinuousClock.now - fixedAt) after the fix with \(status.fullSyncs) full syncs and \(status.resumes) resumes in \(status.connects) connections; leader evictions \(cluster.leader.status().evictions)"
                )
                print("disk full: follower errors seen: \(seen.errors)")
                print("disk full: leader log: \(log.lines(containing: "evicted").prefix(3)) \(log.lines(containing: "follower disconnected").prefix(2))")
            }
        }
    }

    /// A directory of the follower's data directory turns read-only (a read-only tmpfs mounted
    /// over it) while the leader starts writing files there: the follower gets EROFS, reports
    /// it, and is evicted with `disk-error`. Once it is writable again the follower converges.
    /// Then a restart on a data directory that is read-only as a whole fails with a clear error.
    ///
    /// Why not `mount -o remount,ro` under the running follower, as ext4's `errors=remount-ro`
    /// would do: Linux refuses that remount with EBUSY while any file on it is open for
    /// writing, and a follower keeps `.brpl/follower-state` open for as long as it exists.
    @Test func aFollowerWhoseDataDirectoryTurnsReadOnlyIsEvictedAndConvergesOnceWritable() async throws {
        let log = LogRecorder()
        try await ReplicationTestCluster.run(followers: ["healthy"], logger: log.logger) { cluster in
            let directory = cluster.dataDirectory("disk")
            let whole = Self.isRoot ? try ScratchMount.tmpfs(at: directory, options: "size=64m") : nil
            defer { whole?.unmount() }
            try await withDiskFollower(cluster, "disk", log: log, cleanup: {}) { follower, watch in
                try await waitUntilLive(cluster, ["healthy", "disk"])
                let before = try await Workload.run(cluster.leader, producers: 2, records: 2_000, prefix: { "p\($0)" })
                try await cluster.waitUntil("the follower holds the first load") { follower.status().lastDurableLSN >= before.lastLSN }

                // The leader is about to create files under fresh/: make that directory read-only.
                let fresh = directory + "/fresh"
                try FileManager.default.createDirectory(atPath: fresh, withIntermediateDirectories: true)
                let readOnly = try ReadOnlyDirectory(fresh)
                print("read-only: \(readOnly)")
                let workload = try await Workload.run(cluster.leader, producers: 2, records: 2_000, prefix: { "fresh/p\($0)" }, after: before)
                try await waitForDiskErrorEviction(cluster, log: log)
                try await expectNothingLostAndTheOtherFollowerKeepsUp(cluster, workload, log: log)
                let seen = watch.snapshot()
                let persisted = try expectNoAckBeyondWhatIsPersisted(directory, workload, seen)
                let expectedError = readOnly.isMount ? "Read-only file system (errno 30)" : "Permission denied (errno 13)"
                #expect(seen.errors.contains { $0.contains(expectedError) }, "follower errors: \(seen.errors)")
                let eviction = log.lines(containing: "reason=disk-error").first ?? ""
                #expect(eviction.contains("reason=disk-error") && eviction.contains(expectedError), "\(eviction)")
                #expect(seen.highestAck >= before.lastLSN && seen.highestAck < workload.lastLSN)

                readOnly.restore()
                let fixedAt = ContinuousClock.now
                try await cluster.waitUntil("the follower converges once the directory is writable") {
                    follower.status().lastDurableLSN >= workload.lastLSN
                }
                #expect(try ReplicationTestCluster.files(under: directory) == ReplicationTestCluster.files(under: cluster.dataDirectory("leader")))
                let status = follower.status()
                print(
                    "read-only: evicted with disk-error, highest ack seen by the leader LSN \(seen.highestAck) (before the read-only directory: \(before.lastLSN), last: \(workload.lastLSN)), its files held every record through LSN \(persisted); converged \(ContinuousClock.now - fixedAt) after the fix with \(status.fullSyncs) full syncs and \(status.resumes) resumes in \(status.connects) connections; leader evictions \(cluster.leader.status().evictions)"
                )
                print("read-only: follower errors seen: \(seen.errors)")
                print("read-only: leader log: \(log.lines(containing: "evicted").prefix(3))")
            }

            // The follower stopped: its whole data directory goes read-only, and a restart on it
            // fails at once with an error naming the file and errno, instead of half-starting.
            guard let whole else {
                print("read-only restart: skipped (not root, cannot remount)")
                return
            }
            try whole.remount(options: "ro")
            let error = #expect(throws: ReplicationError.self) {
                _ = try ReplicationFollower(configuration: diskFollowerConfiguration(cluster, "disk"), secret: cluster.secret, logger: log.logger)
            }
            #expect(error?.code == .storage && error?.message.contains("(errno \(EROFS))") == true && error?.description.contains("follower-state") == true, "\(String(describing: error))")
            print("read-only restart: ReplicationFollower.init throws \"\(error.map { "\($0)" } ?? "nothing")\"")
            try whole.remount(options: "rw")
            let more = try await Workload.run(cluster.leader, producers: 1, records: 500, prefix: { "after/p\($0)" })
            try await withDiskFollower(cluster, "disk", log: log, cleanup: {}) { follower, _ in
                try await cluster.waitUntil("the restarted follower converges") { follower.status().lastDurableLSN >= more.lastLSN }
                #expect(follower.status().resumes == 1 && follower.status().fullSyncs == 0, "resumed from the backlog: \(follower.status())")
            }
            #expect(try ReplicationTestCluster.files(under: directory) == ReplicationTestCluster.files(under: cluster.dataDirectory("leader")))
        }
    }

    /// A follower joins with a disk too small for the leader's data: its full sync hits ENOSPC.
    /// It acks nothing and reports the error; the leader must see a disk error too (an operator
    /// adding a replica with too small a disk watches the leader), and once the disk has room
    /// the follower converges.
    @Test(.enabled(if: isRoot, "mounting a tmpfs needs root; no other way to fill a disk here"))
    func aFollowerWhoseDiskCannotHoldTheFullSyncIsReportedToTheLeaderAsADiskError() async throws {
        let log = LogRecorder()
        try await ReplicationTestCluster.run(followers: ["healthy"], logger: log.logger) { cluster in
            let workload = try await Workload.run(cluster.leader, producers: 2, records: 30_000, prefix: { "p\($0)" })
            try await cluster.waitUntil("the healthy follower holds the load") {
                (cluster.follower("healthy")?.status().lastDurableLSN ?? 0) >= workload.lastLSN
            }
            let directory = cluster.dataDirectory("disk")
            let mount = try ScratchMount.tmpfs(at: directory, options: "size=2m")
            try await withDiskFollower(cluster, "disk", log: log, cleanup: { mount.unmount() }) { follower, watch in
                try await cluster.waitUntil("the follower fails its full sync for lack of space", timeout: .seconds(60)) {
                    follower.status().fullSyncs >= 2 && watch.snapshot().errors.contains { $0.contains("errno 28") }
                }
                // Every attempt fails the same way within milliseconds (backoff capped at 500 ms):
                // 20 s leaves the leader dozens of chances to learn why.
                let reported = try await ReplicationTestCluster.Workspace.eventually(timeout: .seconds(20)) {
                    cluster.leader.status().evictions[.diskError, default: 0] > 0
                }
                let seen = watch.snapshot()
                try expectNoAckBeyondWhatIsPersisted(directory, workload, seen, ackedSomething: false)
                #expect(seen.highestAck == 0 && follower.status().lastDurableLSN == 0, "nothing was acked: no full sync completed")
                try await expectNothingLostAndTheOtherFollowerKeepsUp(cluster, workload, log: log)
                print(
                    "full sync on a full disk: \(follower.status().connects) attempts, follower errors \(seen.errors); leader evictions \(cluster.leader.status().evictions); leader log: \(log.lines(containing: "follower=disk").suffix(3))"
                )
                #expect(
                    reported,
                    "the follower failed \(follower.status().fullSyncs) full syncs with ENOSPC, but the leader only logged \(Set(log.lines(containing: "follower=disk").map { $0.split(separator: " ").prefix(3).joined(separator: " ") }).sorted()) and counts evictions \(cluster.leader.status().evictions)"
                )

                try mount.remount(options: "size=64m")
                try await cluster.waitUntil("the follower converges once the disk has room") {
                    follower.status().lastDurableLSN >= workload.lastLSN
                }
                #expect(try ReplicationTestCluster.files(under: directory) == ReplicationTestCluster.files(under: cluster.dataDirectory("leader")))
            }
        }
    }

    // MARK: Checks

    /// The leader holds every record exactly, the healthy follower converges, and only the
    /// follower with the bad disk is evicted for a disk error. (Whether the healthy follower
    /// kept its connection is printed, not asserted: with the whole suite running on two cores
    /// an in-process follower can be starved past the 3 s ack timeout, and be evicted for it.)
    private func expectNothingLostAndTheOtherFollowerKeepsUp(_ cluster: ReplicationTestCluster, _ workload: Workload, log: LogRecorder) async throws {
        try workload.expectExactly(in: cluster.dataDirectory("leader"))
        try await cluster.waitUntil("the healthy follower holds everything") {
            (cluster.follower("healthy")?.status().lastDurableLSN ?? 0) >= workload.lastLSN
        }
        #expect(try cluster.differingFiles("healthy").isEmpty)
        let diskErrors = log.lines(containing: "reason=disk-error")
        #expect(diskErrors.allSatisfy { $0.contains("follower=disk") }, "\(diskErrors)")
        let healthy = cluster.follower("healthy")?.status().connects ?? 0
        if healthy != 1 { print("note: the healthy follower reconnected (\(healthy) connections): \(log.lines(containing: "follower=healthy").suffix(3))") }
    }

    /// Every LSN the leader saw acked, and every LSN the follower reported or stored as durable,
    /// is in the follower's files. Returns the LSN through which the files hold every record.
    @discardableResult
    private func expectNoAckBeyondWhatIsPersisted(_ directory: String, _ workload: Workload, _ seen: FollowerWatch.Seen, ackedSomething: Bool = true) throws -> UInt64 {
        let persisted = workload.persistedThrough(in: directory)
        let stored = try FollowerStateFile(directory: DataDirectory(path: directory)).load()
        #expect(seen.highestAck <= persisted, "the leader saw LSN \(seen.highestAck) acked; the follower's files hold records through LSN \(persisted)")
        #expect(seen.highestDurable <= persisted, "the follower reported LSN \(seen.highestDurable) durable; its files hold records through LSN \(persisted)")
        #expect(stored.lastDurableLSN <= persisted, "the follower stored LSN \(stored.lastDurableLSN); its files hold records through LSN \(persisted)")
        if ackedSomething { #expect(seen.highestAck > 0, "the follower acked something before its disk failed") }
        return persisted
    }

    /// Waits for the leader to evict the disk follower with `disk-error`; when it does not,
    /// records what the disk follower and the leader logged about it.
    private func waitForDiskErrorEviction(_ cluster: ReplicationTestCluster, log: LogRecorder) async throws {
        do {
            try await cluster.waitUntil("the follower is evicted with disk-error", timeout: .seconds(60)) {
                cluster.leader.status().evictions[.diskError, default: 0] > 0
            }
        } catch {
            let lines = log.lines(containing: "disk").filter { !$0.contains("full sync progress") }
            Issue.record("\(error)\nlog lines about the disk follower (\(lines.count), last 40):\n\(lines.suffix(40).joined(separator: "\n"))")
            throw error
        }
    }

    private func waitUntilLive(_ cluster: ReplicationTestCluster, _ names: [String]) async throws {
        try await cluster.waitUntil("\(names) stream") {
            let live = Set(cluster.leader.status().followers.filter { $0.state == .live }.map(\.nodeID))
            return Set(names).isSubset(of: live)
        }
    }

    // MARK: The follower on the troubled disk

    private func diskFollowerConfiguration(_ cluster: ReplicationTestCluster, _ name: String) -> ReplicationFollowerConfiguration {
        var configuration = ReplicationFollowerConfiguration(
            dataDirectory: cluster.dataDirectory(name), leaderHost: "127.0.0.1", leaderPort: cluster.leaderPort, clusterID: cluster.clusterID, nodeID: name
        )
        configuration.reconnectBase = .milliseconds(20)
        configuration.reconnectCap = .milliseconds(500)
        return configuration
    }

    /// Runs follower `name` (straight to the leader, no proxy) while `body` runs, with a watch
    /// that samples what the leader saw it ack and what it reported; stops it, then `cleanup`.
    private func withDiskFollower(
        _ cluster: ReplicationTestCluster, _ name: String, log: LogRecorder, cleanup: () -> Void,
        _ body: (ReplicationFollower, FollowerWatch) async throws -> Void
    ) async throws {
        let follower = try ReplicationFollower(configuration: diskFollowerConfiguration(cluster, name), secret: cluster.secret, logger: log.logger)
        let running = Task { try await follower.run() }
        let watch = FollowerWatch(name: name, leader: cluster.leader, follower: follower)
        let watching = Task { await watch.run() }
        do {
            try await body(follower, watch)
        } catch {
            watching.cancel()
            running.cancel()
            _ = await running.result
            cleanup()
            throw error
        }
        watching.cancel()
        running.cancel()
        _ = await running.result
        cleanup()
    }
}
