import Foundation
import NIOCore
import Synchronization

/// The leader's shared state: one lock around ``LeaderStateMachine``, and the actions it
/// returns performed after unlocking.
///
/// Producers, the ticks and follower connections all come through here. Under the lock only
/// the state machine runs (assigning LSNs, encoding records, compressing a sealed batch,
/// offering it to each follower's queue): no await and no I/O. Waking a follower's writer,
/// resuming producers and closing an evicted follower's channel happen after the lock is
/// released, and only in ``perform(_:)``.
final class LeaderCore: Sendable {
    typealias Settings = LeaderSettings
    typealias Counters = LeaderCounters
    typealias Machine = LeaderStateMachine<FollowerSession, CheckedContinuation<Void, any Error>>

    let settings: Settings
    private let state: Mutex<Machine>
    private let nextConnectionID = Atomic<UInt64>(1)
    /// Each file's writer, by path, with at most `maximumOpenFiles` of them holding a descriptor.
    let writers: WriterTable
    /// The local writes in progress, to see a stalled disk while it stalls.
    let localWrites = LocalWriteWatch()
    private let onEviction: @Sendable (FollowerSession, EvictionReason, String) -> Void

    init(settings: Settings, files: [(path: ReplicatedPath, size: Int)], onEviction: @escaping @Sendable (FollowerSession, EvictionReason, String) -> Void) {
        self.settings = settings
        self.onEviction = onEviction
        self.writers = WriterTable(maximumOpenFiles: settings.maximumOpenFiles)
        self.state = Mutex(Machine(settings: settings, files: files))
    }

    /// Runs one event of the state machine under the lock and performs its actions afterwards:
    /// the only way state changes.
    private func withMachine<Result: Sendable>(_ event: @Sendable (inout Machine) -> (Result, Machine.Actions)) -> Result {
        let (result, actions) = state.withLock { event(&$0) }
        if !actions.isEmpty { perform(actions) }
        return result
    }

    private func perform(_ actions: Machine.Actions) {
        for session in actions.wake { session.signalWork() }
        for continuation in actions.confirmed { continuation.resume() }
        for (continuation, error) in actions.failed { continuation.resume(throwing: error) }
        for (session, reason, detail) in actions.close {
            onEviction(session, reason, detail)
            session.channel.close(mode: .all, promise: nil)
            session.signalWork()
        }
    }

    // MARK: Producers

    /// The file's size as the leader last replicated it (0 when it does not exist).
    func replicatedSize(of path: ReplicatedPath) -> Int {
        state.withLock { $0.sequencer.size(of: path) }
    }

    /// Marks a replace or delete of `path` as under way (the caller holds the file's writer).
    /// - Returns: what the leader knew of the file before, for ``abandonChanging(_:restoring:)``.
    @discardableResult
    func beginChanging(_ path: ReplicatedPath) -> Sequencer.FileState? {
        state.withLock { $0.beginChanging(path) }
    }

    /// A replace or delete failed before it changed the local file: nothing is replicated.
    func abandonChanging(_ path: ReplicatedPath, restoring previous: Sequencer.FileState?) {
        state.withLock { $0.abandonChanging(path, restoring: previous) }
    }

    /// Gives `record` the next LSN and seals the batch when it is full.
    func commit(_ record: ReplicationRecord, change: Sequencer.FileChange) -> UInt64 {
        let now = ContinuousClock.now
        return withMachine { $0.commit(record, change: change, now: now) }
    }

    /// Gives each of `records` the next LSN as appends to `path` from byte `offset` on, in one
    /// event. Each record must be at most `chunkBytes`, so a sealed batch still fits
    /// `wireLimits.maximumBatchBytes`.
    /// - Returns: the LSN of the last record.
    func commit(appends records: ArraySlice<ByteBuffer>, to path: ReplicatedPath, startingAt offset: Int) -> UInt64 {
        let now = ContinuousClock.now
        return withMachine { $0.commit(appends: records, to: path, startingAt: offset, now: now) }
    }

    /// Seals the open batch, if any (flush, the flush tick, shutdown).
    func sealOpenBatch() {
        let now = ContinuousClock.now
        withMachine { ((), $0.sealOpenBatch(at: now)) }
    }

    /// True while any live follower's queue lacks room for `bytes` more.
    func queuesLackRoom(for bytes: Int) -> Bool {
        state.withLock { $0.queuesLackRoom(for: bytes) }
    }

    /// In min-ISR(n) mode, waits (in arrival order) until `n` in-sync followers are live with
    /// room in their queues for `bytes` more; throws `notEnoughReplicas` at `timeout`, and
    /// `CancellationError` at once when the producer is cancelled. Evict mode never waits.
    func admitWrite(bytes: Int, timeout: Duration) async throws {
        guard case .minInSyncReplicas = settings.policy else { return }
        let id = state.withLock { $0.takeWaiterID() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = ContinuousClock.now
                let decided = state.withLock { machine -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    let admitted = machine.requestWrite(id: id, bytes: bytes, waiter: continuation, timeout: timeout, at: now)
                    return admitted ? .success(()) : nil
                }
                if let decided { continuation.resume(with: decided) }
            }
        } onCancel: {
            state.withLock { $0.cancelWrite(id: id) }?.resume(throwing: CancellationError())
        }
    }

    /// Fails every waiting confirm and held write with `notLeader`, and every later one.
    func stepDown(reason: String) {
        withMachine { ((), $0.stepDown(reason: reason)) }
    }

    /// Why the leader stepped down; nil while it leads.
    var steppedDown: String? { state.withLock { $0.steppedDown } }

    /// Producers held back by the min-ISR policy right now.
    var throttledProducers: Int { state.withLock { $0.throttledProducers } }

    // MARK: Confirms and the in-sync set

    /// Starts holding confirms to the policy (called once the leader listens).
    func startGating() {
        state.withLock { $0.startGating() }
    }

    /// Resolves when the policy holds for `lsn`; throws `notEnoughReplicas` at `timeout`.
    func waitForReplication(upTo lsn: UInt64, timeout: Duration) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let now = ContinuousClock.now
            let confirmed = withMachine { $0.requestConfirm(lsn, waiter: continuation, timeout: timeout, at: now) }
            if confirmed { continuation.resume() }
        }
    }

    /// Periodic work (the in-sync tick); returns the in-sync set to persist, if it should change.
    func tick() -> Set<String>? {
        let now = ContinuousClock.now
        return withMachine { $0.tick(at: now) }
    }

    /// The coordinator stored `members` (nil: it failed to): confirms may rely on them now.
    func inSyncPersisted(_ members: Set<String>?) {
        withMachine { ((), $0.inSyncPersisted(members)) }
    }

    /// The persisted in-sync set and the highest LSN a confirm holds for now.
    var inSyncSnapshot: (members: [String], confirmedLSN: UInt64) { state.withLock { $0.inSyncSnapshot } }

    // MARK: Followers

    enum Admission {
        /// Stream from this LSN, read from the backlog first.
        case resume(FollowerSession, nextLSN: UInt64)
        case fullSync(FollowerSession)
        /// Another connection of this node id is alive; the text says so.
        case duplicate(String)
    }

    /// Registers an authenticated follower and decides how its stream resumes.
    func admit(
        nodeID: String, remoteAddress: String, channel: any Channel, liveness: LivenessView, epoch: UInt64, lastDurableLSN: UInt64
    ) -> Admission {
        let session = FollowerSession(
            connectionID: nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue, nodeID: nodeID, remoteAddress: remoteAddress,
            channel: channel, liveness: liveness
        )
        let now = ContinuousClock.now
        let admission = withMachine { machine in
            machine.admit(
                session, nodeID: nodeID, remoteAddress: remoteAddress, epoch: epoch, lastDurableLSN: lastDurableLSN, at: now,
                isAlive: { previous in previous.liveness.isAlive(at: now) }
            )
        }
        switch admission {
        case .resume(let nextLSN): return .resume(session, nextLSN: nextLSN)
        case .fullSync: return .fullSync(session)
        case .duplicate(let reason): return .duplicate(reason)
        }
    }

    /// What a follower's writer should send next.
    func nextWork(for session: FollowerSession) -> Machine.NextWork {
        let now = ContinuousClock.now
        return withMachine { $0.nextWork(for: session.id, at: now) }
    }

    /// The writer wrote `batches` to the follower's socket.
    func recordSent(_ batches: [SealedBatch], by session: FollowerSession) {
        state.withLock { $0.recordSent(batches, by: session.id) }
    }

    func recordSyncProgress(_ progress: SyncProgress, of session: FollowerSession) {
        state.withLock { $0.recordSyncProgress(progress, of: session.id) }
    }

    /// A full sync wrote a frame: `contentBytes` of file contents (0 for other frames).
    func recordSyncSent(contentBytes: Int, wireBytes: Int) {
        state.withLock { machine in
            machine.counters.syncContentBytes += contentBytes
            machine.counters.syncWireBytes += wireBytes
        }
    }

    /// A full sync finished sending files as of `cutLSN`: stream from the next LSN.
    func finishFullSync(_ session: FollowerSession, cutLSN: UInt64) {
        withMachine { ((), $0.finishFullSync(session.id, cutLSN: cutLSN)) }
    }

    /// A follower acked `lsn` as durable.
    func recordAck(_ session: FollowerSession, lsn: UInt64) -> Machine.AckOutcome {
        let now = ContinuousClock.now
        return withMachine { $0.recordAck(lsn, from: session.id, at: now) }
    }

    /// Evicts a follower for a reason found outside the state machine (timeouts, bad frames).
    func evict(_ session: FollowerSession, reason: EvictionReason, detail: String) {
        let now = ContinuousClock.now
        withMachine { ((), $0.evict(session.id, reason: reason, detail: detail, at: now)) }
    }

    /// The connection ended on its own (the follower left): drop it without counting an eviction.
    func remove(_ session: FollowerSession) {
        withMachine { ((), $0.remove(session.id)) }
    }

    /// Whether the connection is still served (not evicted, not gone).
    func isServing(_ session: FollowerSession) -> Bool {
        state.withLock { $0.followers[session.id] != nil }
    }

    /// What the leader knows of one follower, for status and eviction details.
    typealias FollowerSnapshot = FollowerTable<FollowerSession>.Follower

    func snapshot(of session: FollowerSession) -> FollowerSnapshot? {
        state.withLock { $0.followers[session.id] }
    }

    /// Every served follower, for shutdown and status.
    var followers: [FollowerSnapshot] { state.withLock { Array($0.followers.followers.values) } }

    var sessions: [FollowerSession] { followers.map(\.link) }

    var counters: Counters { state.withLock { $0.counters } }

    /// The last LSN of the last sealed batch: always a batch boundary in the backlog.
    var sealedThroughLSN: UInt64 { state.withLock { $0.sealedThroughLSN } }

    /// The last LSN assigned so far (0 before the first).
    var lastAssignedLSN: UInt64 { state.withLock { $0.lastAssignedLSN } }

    var backlogRange: (first: UInt64?, last: UInt64?, bytes: Int) {
        state.withLock { ($0.sequencer.backlog.firstLSN, $0.sequencer.backlog.lastLSN, $0.sequencer.backlog.bytes) }
    }

    // MARK: Full sync cut

    /// The last LSN and every file's size as of it, for the epoch history; nil while a replace
    /// or delete is under way (the files are then between two LSNs).
    func filesAtLastLSN() -> (lastLSN: UInt64, files: [(path: ReplicatedPath, size: Int)])? {
        state.withLock { machine in
            let files = machine.sequencer.files
            if files.values.contains(where: \.isChanging) { return nil }
            return (machine.lastAssignedLSN, files.map { (path: $0.key, size: $0.value.size) })
        }
    }

    /// The files the leader knows with their generations, to open before a cut.
    func fileGenerations() -> [ReplicatedPath: UInt64] {
        state.withLock { $0.fileGenerations }
    }

    /// Tries to take a consistent cut with the handles a full sync opened beforehand.
    /// Whether `path` is still the file it was at a cut's `generation` (see the machine's).
    func isUnchanged(_ path: ReplicatedPath, generation: UInt64) -> Bool {
        state.withLock { $0.isUnchanged(path, generation: generation) }
    }

    func takeCut(opened: [ReplicatedPath: UInt64]) -> Machine.CutAttempt {
        let now = ContinuousClock.now
        return withMachine { $0.takeCut(opened: opened, at: now) }
    }
}
