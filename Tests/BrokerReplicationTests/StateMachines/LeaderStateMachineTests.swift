import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// A follower connection as the state machine sees it in tests: a name, no socket.
struct TestLink: Identifiable, Equatable, Sendable {
    let id: UInt64
    let nodeID: String
}

/// Time that moves only when a test says so.
struct ManualClock {
    private(set) var now = ContinuousClock.now

    mutating func advance(by duration: Duration) {
        now += duration
    }
}

/// The leader's decisions driven event by event with a manual clock and no sockets: admission,
/// sealing, eviction on a full queue, confirms under both policies, the throttle and the cut.
@Suite("Leader state machine")
struct LeaderStateMachineTests {
    typealias Machine = LeaderStateMachine<TestLink, Int>

    static func settings(
        policy: ReplicationPolicy = .evictSlowFollowers, batchBytes: Int = 1024, queueBytes: Int = 64 * 1024
    ) -> LeaderSettings {
        LeaderSettings(
            epoch: 7, batchBytes: batchBytes, queueBytes: queueBytes, queueFrames: 1024, backlogBytes: 1 << 20,
            policy: policy, maxLagTime: .seconds(5)
        )
    }

    static let path = try! ReplicatedPath("segment")

    /// Appends `bytes` incompressible bytes to the one test file: queues count wire bytes, so
    /// a test's sizes hold after LZ4.
    static func append(_ bytes: Int, to machine: inout Machine, at now: ContinuousClock.Instant) -> (lsn: UInt64, actions: Machine.Actions) {
        let size = machine.sequencer.size(of: path)
        var state = UInt64(size) &* 0x9E37_79B9_7F4A_7C15 | 1
        let noise = (0..<bytes).map { _ -> UInt8 in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
        let record = ReplicationRecord.append(path: path, offset: UInt64(size), bytes: ByteBuffer(bytes: noise))
        return machine.commit(record, change: .grew(toSize: size + bytes), now: now)
    }

    /// Admits `nodeID` as a follower of this epoch that holds nothing yet, and lets it go live.
    static func live(_ nodeID: String, id: UInt64, in machine: inout Machine, at now: ContinuousClock.Instant) throws -> TestLink {
        let link = TestLink(id: id, nodeID: nodeID)
        let (admission, _) = machine.admit(
            link, nodeID: nodeID, remoteAddress: "127.0.0.1:1", epoch: 7, lastDurableLSN: machine.sealedThroughLSN, at: now, isAlive: { _ in false }
        )
        #expect(admission == .resume(nextLSN: machine.sealedThroughLSN + 1))
        // Nothing to catch up on: its writer's first turn makes it live.
        guard case .wait = machine.nextWork(for: id, at: now).work else { throw TestFailure("expected to go live") }
        #expect(machine.followers[id]?.mode == .live)
        return link
    }

    /// The writer takes what is queued and the follower acks all of it.
    static func drainAndAck(_ link: TestLink, in machine: inout Machine, at now: ContinuousClock.Instant) -> Machine.Actions {
        var actions = Machine.Actions()
        while true {
            let next = machine.nextWork(for: link.id, at: now)
            actions.confirmed += next.actions.confirmed
            guard case .frames(let batches, _) = next.work else { break }
            machine.recordSent(batches, by: link.id)
            let ack = machine.recordAck(batches.last!.lastLSN, from: link.id, at: now)
            actions.confirmed += ack.actions.confirmed
        }
        return actions
    }

    /// A write request (a mutating call cannot sit inside `#expect` directly).
    static func write(_ machine: inout Machine, id: UInt64, bytes: Int, waiter: Int, timeout: Duration, at now: ContinuousClock.Instant) -> Bool {
        machine.requestWrite(id: id, bytes: bytes, waiter: waiter, timeout: timeout, at: now)
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Admission

    @Test func aFollowerResumesFromTheBacklogOnlyInThisEpochAndOnlyAtABatchBoundary() {
        let clock = ManualClock()
        var machine = Machine(settings: Self.settings(), files: [])
        for _ in 0..<3 { _ = Self.append(600, to: &machine, at: clock.now) }  // seals at 1,200 bytes: LSNs 1-2
        #expect(machine.sealedThroughLSN == 2)
        func admit(_ id: UInt64, epoch: UInt64, lastDurableLSN: UInt64) -> Machine.Admission {
            machine.admit(
                TestLink(id: id, nodeID: "f\(id)"), nodeID: "f\(id)", remoteAddress: "127.0.0.1:1", epoch: epoch,
                lastDurableLSN: lastDurableLSN, at: clock.now, isAlive: { _ in false }
            ).admission
        }
        #expect(admit(1, epoch: 7, lastDurableLSN: 0) == .resume(nextLSN: 1))
        #expect(admit(2, epoch: 7, lastDurableLSN: 2) == .resume(nextLSN: 3), "the live end: nothing to read from the backlog")
        #expect(admit(3, epoch: 6, lastDurableLSN: 2) == .fullSync, "another epoch's LSNs mean nothing here")
        #expect(admit(4, epoch: 7, lastDurableLSN: 1) == .fullSync, "LSN 2 is inside a batch")
        #expect(machine.counters.partialResyncs == 2)
        #expect(machine.counters.fullSyncs == 2)
    }

    @Test func aSecondConnectionOfALiveNodeIsRefusedAndOfADeadOneReplacesIt() throws {
        let clock = ManualClock()
        var machine = Machine(settings: Self.settings(), files: [])
        let first = try Self.live("f1", id: 1, in: &machine, at: clock.now)
        let refused = machine.admit(
            TestLink(id: 2, nodeID: "f1"), nodeID: "f1", remoteAddress: "127.0.0.1:2", epoch: 7, lastDurableLSN: 0, at: clock.now, isAlive: { _ in true }
        )
        guard case .duplicate(let reason) = refused.admission else { throw TestFailure("expected a refusal, got \(refused.admission)") }
        #expect(reason.contains("127.0.0.1:1"), "names where the live connection comes from: \(reason)")
        #expect(machine.followers[first.id] != nil, "the live connection stays")

        let replacing = machine.admit(
            TestLink(id: 3, nodeID: "f1"), nodeID: "f1", remoteAddress: "127.0.0.1:3", epoch: 7, lastDurableLSN: 0, at: clock.now, isAlive: { _ in false }
        )
        #expect(replacing.admission == .resume(nextLSN: 1))
        #expect(replacing.actions.close.map(\.link) == [first])
        #expect(replacing.actions.close.first?.reason == .replaced)
        #expect(machine.followers[first.id] == nil)
        #expect(machine.counters.evictions[.replaced] == 1)
    }

    // MARK: Sealing and eviction

    @Test func aFullBatchIsSealedOnceAndOfferedToEveryLiveFollower() throws {
        let clock = ManualClock()
        var machine = Machine(settings: Self.settings(), files: [])
        let f1 = try Self.live("f1", id: 1, in: &machine, at: clock.now)
        let f2 = try Self.live("f2", id: 2, in: &machine, at: clock.now)
        let small = Self.append(100, to: &machine, at: clock.now)
        #expect(small.actions.wake.isEmpty, "the batch is still open")
        let full = Self.append(1000, to: &machine, at: clock.now)
        #expect(Set(full.actions.wake.map(\.id)) == [f1.id, f2.id])
        #expect(machine.counters.sealedBatches == 1)
        #expect(machine.sealedThroughLSN == 2)
        for link in [f1, f2] {
            guard case .frames(let batches, _) = machine.nextWork(for: link.id, at: clock.now).work else { throw TestFailure("no frames for \(link.nodeID)") }
            #expect(batches.map(\.firstLSN) == [1] && batches.map(\.lastLSN) == [2])
        }
    }

    @Test func aFollowerWhoseQueueIsFullIsEvictedAtOnceAndTheOthersKeepTheirFrame() throws {
        let clock = ManualClock()
        var machine = Machine(settings: Self.settings(queueBytes: 4096), files: [])
        let slow = try Self.live("slow", id: 1, in: &machine, at: clock.now)
        let healthy = try Self.live("healthy", id: 2, in: &machine, at: clock.now)
        var closed: [(link: TestLink, reason: EvictionReason, detail: String)] = []
        for _ in 0..<20 {
            closed += Self.append(1024, to: &machine, at: clock.now).actions.close
            _ = Self.drainAndAck(healthy, in: &machine, at: clock.now)  // only the healthy one reads
        }
        #expect(closed.map(\.link) == [slow])
        #expect(closed.first?.reason == .queueFull)
        #expect(closed.first?.detail.contains("bound 4096 bytes") == true, "\(closed.first?.detail ?? "")")
        #expect(machine.followers[slow.id] == nil)
        #expect(machine.followers[healthy.id]?.ackedLSN == machine.sealedThroughLSN)
        #expect(machine.counters.evictions == [.queueFull: 1])
        #expect(machine.nextWork(for: slow.id, at: clock.now).work.isClosed)
    }

    // MARK: Confirms

    /// A listening leader with two live followers that hold everything, persisted in sync.
    static func twoInSyncFollowers(in machine: inout Machine, at now: ContinuousClock.Instant) throws -> (TestLink, TestLink) {
        machine.startGating()
        let f1 = try live("f1", id: 1, in: &machine, at: now)
        let f2 = try live("f2", id: 2, in: &machine, at: now)
        _ = machine.recordAck(0, from: f1.id, at: now)
        _ = machine.recordAck(0, from: f2.id, at: now)
        persistInSync([f1, f2], in: &machine, at: now)
        return (f1, f2)
    }

    /// Makes `links` the persisted in-sync set.
    static func persistInSync(_ links: [TestLink], in machine: inout Machine, at now: ContinuousClock.Instant) {
        let change = machine.tick(at: now).change
        #expect(change == Set(links.map(\.nodeID)))
        _ = machine.inSyncPersisted(change)
    }

    @Test func inEvictModeAConfirmWaitsForEveryInSyncFollowerAndFailsAtItsDeadline() throws {
        var clock = ManualClock()
        var machine = Machine(settings: Self.settings(), files: [])
        let (f1, f2) = try Self.twoInSyncFollowers(in: &machine, at: clock.now)

        let lsn = Self.append(10, to: &machine, at: clock.now).lsn
        let asked = machine.requestConfirm(lsn, waiter: 42, timeout: .seconds(1), at: clock.now)
        #expect(!asked.confirmed)
        #expect(asked.actions.wake.count == 2, "a waiting confirm seals its batch at once")
        #expect(Self.drainAndAck(f1, in: &machine, at: clock.now).confirmed.isEmpty, "f2 has not acked")
        #expect(Self.drainAndAck(f2, in: &machine, at: clock.now).confirmed == [42])

        let next = Self.append(10, to: &machine, at: clock.now).lsn
        #expect(!machine.requestConfirm(next, waiter: 43, timeout: .seconds(1), at: clock.now).confirmed)
        clock.advance(by: .milliseconds(999))
        #expect(machine.tick(at: clock.now).actions.failed.isEmpty)
        clock.advance(by: .milliseconds(1))
        let failed = machine.tick(at: clock.now).actions.failed
        #expect(failed.map(\.0) == [43])
        #expect(failed.first?.1.isNotEnoughReplicas == true)
        #expect(machine.counters.notEnoughReplicasErrors == 1)
    }

    @Test func inMinISRModeAConfirmHoldsOnceNFollowersHoldIt() throws {
        let clock = ManualClock()
        var machine = Machine(settings: Self.settings(policy: .minInSyncReplicas(1)), files: [])
        let (_, f2) = try Self.twoInSyncFollowers(in: &machine, at: clock.now)
        let lsn = Self.append(10, to: &machine, at: clock.now).lsn
        #expect(!machine.requestConfirm(lsn, waiter: 1, timeout: .seconds(1), at: clock.now).confirmed)
        #expect(Self.drainAndAck(f2, in: &machine, at: clock.now).confirmed == [1], "one of two is enough")
        #expect(machine.inSyncSnapshot.confirmedLSN == lsn)
    }

    @Test func aFollowerThatStaysBehindForMaxLagTimeLeavesTheInSyncSet() throws {
        var clock = ManualClock()
        var machine = Machine(settings: Self.settings(), files: [])
        machine.startGating()
        let f1 = try Self.live("f1", id: 1, in: &machine, at: clock.now)
        _ = machine.recordAck(0, from: f1.id, at: clock.now)
        Self.persistInSync([f1], in: &machine, at: clock.now)
        _ = Self.append(2000, to: &machine, at: clock.now)  // sealed, never acked
        clock.advance(by: .seconds(5))
        #expect(machine.tick(at: clock.now).change == nil, "within maxLagTime")
        clock.advance(by: .milliseconds(1))
        #expect(machine.tick(at: clock.now).change == [])
    }

    // MARK: The min-ISR throttle

    @Test func theThrottleHoldsAWriteUntilAFollowerHasRoomAndFailsItAtItsDeadline() throws {
        var clock = ManualClock()
        var machine = Machine(settings: Self.settings(policy: .minInSyncReplicas(1), queueBytes: 16 * 1024), files: [])
        #expect(Self.write(&machine, id: 1, bytes: 1 << 20, waiter: 1, timeout: .seconds(1), at: clock.now), "no throttle before the leader listens")
        machine.startGating()
        #expect(!Self.write(&machine, id: 2, bytes: 10, waiter: 2, timeout: .seconds(1), at: clock.now), "no in-sync follower: held")
        let f1 = try Self.live("f1", id: 1, in: &machine, at: clock.now)
        _ = machine.recordAck(0, from: f1.id, at: clock.now)
        let change = machine.tick(at: clock.now).change
        #expect(machine.inSyncPersisted(change).confirmed == [2], "a follower with room joined: the held write goes")

        // Fill f1's queue with 12 KiB it has not read: 12 KiB + 4 KiB + one 1 KiB batch exceed 16 KiB.
        for _ in 0..<12 { _ = Self.append(1024, to: &machine, at: clock.now) }
        #expect(!Self.write(&machine, id: 3, bytes: 4096, waiter: 3, timeout: .seconds(1), at: clock.now))
        #expect(!Self.write(&machine, id: 4, bytes: 10, waiter: 4, timeout: .seconds(1), at: clock.now), "arrival order: behind 3")
        #expect(machine.throttledProducers == 2)
        #expect(Self.drainAndAck(f1, in: &machine, at: clock.now).confirmed == [3, 4])

        #expect(!Self.write(&machine, id: 5, bytes: 1 << 20, waiter: 5, timeout: .seconds(1), at: clock.now), "never fits")
        #expect(machine.cancelWrite(id: 5) == 5)
        #expect(!Self.write(&machine, id: 6, bytes: 1 << 20, waiter: 6, timeout: .seconds(1), at: clock.now))
        clock.advance(by: .seconds(1))
        let failed = machine.tick(at: clock.now).actions.failed
        #expect(failed.map(\.0) == [6])
        #expect(failed.first.map { "\($0.1)".contains("write of 1048576 bytes refused") } == true)
        #expect(machine.throttledProducers == 0)
    }

    // MARK: The full-sync cut

    @Test func theCutWaitsForAReplaceReopensStaleFilesAndSealsAtItsLSN() throws {
        let clock = ManualClock()
        let other = try ReplicatedPath("other")
        var machine = Machine(settings: Self.settings(), files: [(Self.path, 5)])
        _ = Self.append(10, to: &machine, at: clock.now)
        let generations = machine.fileGenerations
        #expect(machine.takeCut(opened: generations.mapValues { $0 + 1 }, at: clock.now).attempt == .reopen([Self.path]))

        let previous = machine.beginChanging(other)
        #expect(machine.fileGenerations[other] == nil, "a file being replaced is not opened: it may never exist")
        #expect(machine.takeCut(opened: generations, at: clock.now).attempt == .busy, "a replace is under way")
        machine.abandonChanging(other, restoring: previous)

        let cut = machine.takeCut(opened: generations, at: clock.now).attempt
        #expect(cut == .cut(cutLSN: 1, files: [.init(path: Self.path, size: 15, generation: generations[Self.path]!)]))
        #expect(machine.sealedThroughLSN == 1, "the open batch was sealed at the cut")
        #expect(machine.isUnchanged(Self.path, generation: generations[Self.path]!))

        _ = machine.commit(.delete(path: Self.path), change: .deleted, now: clock.now)
        _ = machine.commit(
            .replace(path: Self.path, offset: 0, chunk: ByteBuffer(bytes: [1, 2]), flags: [.lastChunk]), change: .replaced(size: 2), now: clock.now
        )
        #expect(machine.takeCut(opened: generations, at: clock.now).attempt == .reopen([Self.path]), "replaced since it was opened")
        #expect(!machine.isUnchanged(Self.path, generation: generations[Self.path]!), "a handle opened now shows the replacement")
    }

    /// A sync opens only some files before its cut; the others are opened later and checked.
    @Test func aCutNeedsOnlyTheFilesTheSyncOpenedToBeCurrent() throws {
        let clock = ManualClock()
        let other = try ReplicatedPath("other")
        var machine = Machine(settings: Self.settings(), files: [(Self.path, 5), (other, 3)])
        let generations = machine.fileGenerations
        guard case .cut(_, let files) = machine.takeCut(opened: [other: generations[other]!], at: clock.now).attempt else {
            Issue.record("no cut with one of two files opened")
            return
        }
        #expect(Set(files.map(\.path)) == [Self.path, other], "the file not opened is in the cut too")
        let previous = machine.beginChanging(Self.path)
        #expect(!machine.isUnchanged(Self.path, generation: generations[Self.path]!), "a replace under way")
        machine.abandonChanging(Self.path, restoring: previous)
        #expect(machine.isUnchanged(Self.path, generation: generations[Self.path]!))
        _ = machine.commit(.delete(path: Self.path), change: .deleted, now: clock.now)
        #expect(!machine.isUnchanged(Self.path, generation: generations[Self.path]!), "deleted after the cut")
    }
}

extension LeaderStateMachine.NextWork {
    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }
}
