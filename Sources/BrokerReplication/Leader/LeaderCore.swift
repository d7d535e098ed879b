import Foundation
import DequeModule
import LZ4
import NIOCore
import Synchronization

/// The leader's shared state and every decision about it, behind one lock.
///
/// Producers, the flush tick and follower connections all come through here. Critical
/// sections only assign LSNs, encode records into the open batch, compress a sealed batch and
/// hand the same frame to each live follower's queue: no await and no I/O under the lock.
/// Waking a follower's writer and closing an evicted follower's channel happen after the lock
/// is released.
package final class LeaderCore: Sendable {
    package struct Settings: Sendable {
        package var epoch: UInt64
        package var batchBytes: Int
        package var queueBytes: Int
        package var queueFrames: Int
        package var backlogBytes: Int
        package var policy: ReplicationPolicy = .evictSlowFollowers
        package var maxLagTime: Duration = .seconds(5)
        package var writerTakeBytes = 1 << 20
        /// Writer handles kept open at most (plus one per write in progress).
        package var maximumOpenFiles = 256
    }

    /// What the leader knows of one file as of the last assigned LSN.
    package struct FileState: Sendable {
        package var size: Int
        /// Changes on every replace and delete, so a full sync can tell whether the handle it
        /// opened still shows the file as of its cut.
        package var generation: UInt64
        /// A replace or delete is under way: a full sync must not cut now.
        package var isChanging = false
    }

    package struct Counters: Sendable, Equatable {
        package var evictions: [EvictionReason: Int] = [:]
        /// The last few evictions, newest last, for the status snapshot.
        package var recentEvictions: [LeaderStatus.Eviction] = []
        package var fullSyncs = 0
        package var partialResyncs = 0
        package var sealedBatches = 0
        package var payloadBytes = 0
        package var wireBytes = 0
        package var notEnoughReplicasErrors = 0
    }

    /// A producer waiting in `waitForReplication`.
    struct ConfirmWaiter {
        var id: UInt64
        var lsn: UInt64
        var deadline: ContinuousClock.Instant
        var timeout: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct State {
        var nextLSN: UInt64 = 1
        var builder = BatchBuilder()
        let compressor = LZ4BlockCompressor()
        var backlog: Backlog
        var files: [ReplicatedPath: FileState] = [:]
        var nextGeneration: UInt64 = 1
        var live: [UInt64: FollowerSession] = [:]
        var sessionsByNode: [String: FollowerSession] = [:]
        var nextConnectionID: UInt64 = 1
        var counters = Counters()
        var inSync: InSyncReplicas
        var confirmWaiters: [ConfirmWaiter] = []
        /// Producers held back in min-ISR mode, in arrival order.
        var throttled: Deque<ConfirmWaiter> = []
        var nextWaiterID: UInt64 = 1
        /// Confirms wait for followers only once the leader listens, so a broker's start-up
        /// writes cannot deadlock (LavinMQ removed its min-ISR after exactly that).
        var isGating = false

        /// The LSN the next sealed batch will start with.
        var nextSealedLSN: UInt64 { builder.isEmpty ? nextLSN : builder.firstLSN }
    }

    /// Work to do once the lock is released.
    package struct AfterUnlock {
        var wake: [CheckedContinuation<Void, Never>] = []
        var close: [(FollowerSession, EvictionReason, String)] = []
        var confirmed: [CheckedContinuation<Void, any Error>] = []
        var failed: [(CheckedContinuation<Void, any Error>, ReplicationError)] = []
    }

    package let settings: Settings
    private let state: Mutex<State>
    /// Each file's writer, by path, with at most `maximumOpenFiles` of them holding a descriptor.
    package let writers: WriterTable
    private let onEviction: @Sendable (FollowerSession, EvictionReason, String) -> Void

    package init(settings: Settings, files: [(path: ReplicatedPath, size: Int)], onEviction: @escaping @Sendable (FollowerSession, EvictionReason, String) -> Void) {
        self.settings = settings
        self.onEviction = onEviction
        self.writers = WriterTable(maximumOpenFiles: settings.maximumOpenFiles)
        var initial = State(backlog: Backlog(maximumBytes: settings.backlogBytes), inSync: InSyncReplicas(maxLagTime: settings.maxLagTime))
        for file in files {
            initial.files[file.path] = FileState(size: file.size, generation: initial.nextGeneration)
            initial.nextGeneration += 1
        }
        self.state = Mutex(initial)
    }

    package func perform(_ work: AfterUnlock) {
        for continuation in work.wake { continuation.resume() }
        for continuation in work.confirmed { continuation.resume() }
        for (continuation, error) in work.failed { continuation.resume(throwing: error) }
        for (session, reason, detail) in work.close {
            onEviction(session, reason, detail)
            session.channel.close(mode: .all, promise: nil)
        }
    }

    // MARK: Producers

    /// The writer that serialises local writes to `path`.
    package func writer(for path: ReplicatedPath) -> FileWriter {
        writers.writer(for: path)
    }

    /// The file's size as the leader last replicated it (0 when it does not exist).
    package func replicatedSize(of path: ReplicatedPath) -> Int {
        state.withLock { $0.files[path]?.size ?? 0 }
    }

    package enum FileChange: Sendable {
        case grew(toSize: Int)
        case replaced(size: Int)
        case deleted
        /// Part of a replace or delete that is not finished: the file itself is unchanged.
        case none
    }

    /// Marks a replace or delete of `path` as under way (the caller holds the file's writer).
    /// - Returns: what the leader knew of the file before, for ``abandonChanging(_:restoring:)``.
    @discardableResult
    package func beginChanging(_ path: ReplicatedPath) -> FileState? {
        state.withLock { state in
            let previous = state.files[path]
            var file = previous ?? FileState(size: 0, generation: state.nextGeneration)
            file.isChanging = true
            file.generation = state.nextGeneration
            state.nextGeneration += 1
            state.files[path] = file
            return previous
        }
    }

    /// A replace or delete failed before it changed the local file: the leader knows the file
    /// as before, nothing is replicated, and a full sync may cut again (no cut happened in
    /// between: a cut waits while a file is changing).
    package func abandonChanging(_ path: ReplicatedPath, restoring previous: FileState?) {
        state.withLock { $0.files[path] = previous }
    }

    /// Gives `record` the next LSN, adds it to the open batch, records what it did to the
    /// file, and seals the batch when it is full.
    package func commit(_ record: ReplicationRecord, change: FileChange) -> UInt64 {
        var work = AfterUnlock()
        let lsn = state.withLock { state -> UInt64 in
            let lsn = state.nextLSN
            state.nextLSN += 1
            state.builder.append(record, lsn: lsn)
            let path = record.path
            switch change {
            case .grew(let size):
                Self.setSize(size, of: path, in: &state)
            case .replaced(let size):
                state.files[path] = FileState(size: size, generation: state.nextGeneration)
                state.nextGeneration += 1
            case .deleted:
                state.files[path] = nil
            case .none:
                break
            }
            if state.builder.payloadBytes >= settings.batchBytes { seal(&state, into: &work) }
            return lsn
        }
        perform(work)
        return lsn
    }

    /// Gives each of `records` the next LSN, in order, as appends to `path` that follow one
    /// another from byte `offset` on; records the file's new size once, and seals the batch
    /// whenever it fills, so a sealed batch may end inside the range.
    ///
    /// One lock for the whole range: the LSNs are contiguous, and no full-sync cut sees the
    /// file part-way. Each record must be at most `chunkBytes`, like any one record, so a
    /// sealed batch still fits `wireLimits.maximumBatchBytes`.
    ///
    /// - Returns: the LSN of the last record.
    package func commit(appends records: ArraySlice<ByteBuffer>, to path: ReplicatedPath, startingAt offset: Int) -> UInt64 {
        precondition(!records.isEmpty, "a range of appends holds at least one record")
        var work = AfterUnlock()
        let lastLSN = state.withLock { state -> UInt64 in
            var offset = offset
            for bytes in records {
                state.builder.append(.append(path: path, offset: UInt64(offset), bytes: bytes), lsn: state.nextLSN)
                state.nextLSN += 1
                offset += bytes.readableBytes
                if state.builder.payloadBytes >= settings.batchBytes { seal(&state, into: &work) }
            }
            Self.setSize(offset, of: path, in: &state)
            return state.nextLSN - 1
        }
        perform(work)
        return lastLSN
    }

    private static func setSize(_ size: Int, of path: ReplicatedPath, in state: inout State) {
        // Not `files[path, default: ...]`: its autoclosure over `state` cost two allocations
        // per record.
        if state.files[path] != nil {
            state.files[path]!.size = size
        } else {
            state.files[path] = FileState(size: size, generation: state.nextGeneration)
        }
    }

    /// Seals the open batch, if any (flush, the flush tick, a full-sync cut).
    package func sealOpenBatch() {
        var work = AfterUnlock()
        state.withLock { seal(&$0, into: &work) }
        perform(work)
    }

    /// Compresses the open batch once, keeps it in the backlog and offers the same frame to
    /// every live follower; a follower whose queue is full is evicted on the spot.
    private func seal(_ state: inout State, into work: inout AfterUnlock) {
        guard !state.builder.isEmpty else { return }
        let sealed = state.builder.seal(using: state.compressor)
        state.backlog.append(sealed)
        state.counters.sealedBatches += 1
        state.counters.payloadBytes += sealed.payloadBytes
        state.counters.wireBytes += sealed.wireBytes
        var evicted: [(UInt64, String)] = []
        for (id, session) in state.live {
            let outcome = session.state.withLock { sessionState -> OutboundQueue.TrySendResult in
                let result = sessionState.queue.trySend(sealed)
                switch result {
                case .enqueued:
                    if let waiter = FollowerSession.takeWaiter(&sessionState) { work.wake.append(waiter) }
                case .full:
                    if let waiter = FollowerSession.close(&sessionState, reason: .queueFull) { work.wake.append(waiter) }
                }
                return result
            }
            if case .full(let bytes, let frames) = outcome {
                let detail = "outbound queue full (\(bytes) bytes in \(frames) frames; bound \(settings.queueBytes) bytes, \(settings.queueFrames) frames)"
                evicted.append((id, detail))
                work.close.append((session, .queueFull, detail))
            }
        }
        for (id, detail) in evicted {
            if let session = state.live.removeValue(forKey: id) { forget(session, in: &state, reason: .queueFull, detail: detail) }
        }
    }

    private func forget(_ session: FollowerSession, in state: inout State, reason: EvictionReason, detail: String) {
        count(eviction: reason, of: session.nodeID, detail: detail, in: &state)
        leave(session, in: &state)
    }

    private func count(eviction reason: EvictionReason, of nodeID: String, detail: String, in state: inout State) {
        state.counters.evictions[reason, default: 0] += 1
        state.counters.recentEvictions.append(LeaderStatus.Eviction(nodeID: nodeID, reason: reason.rawValue, detail: detail, at: Date()))
        if state.counters.recentEvictions.count > LeaderStatus.Eviction.kept { state.counters.recentEvictions.removeFirst() }
    }

    /// The session's node is gone (evicted or disconnected): it leaves the in-sync set at the
    /// next persisted change, unless the node already reconnected with a newer session.
    private func leave(_ session: FollowerSession, in state: inout State) {
        guard state.sessionsByNode[session.nodeID] === session else { return }
        state.sessionsByNode[session.nodeID] = nil
        state.inSync.remove(session.nodeID)
    }

    /// True while any live follower's queue lacks room for `bytes` more: a large write waits
    /// between chunks so that it does not, on its own, overflow a healthy follower.
    package func queuesLackRoom(for bytes: Int) -> Bool {
        state.withLock { state in
            state.live.values.contains { session in
                session.state.withLock { $0.queue.queuedBytes + bytes > settings.queueBytes / 2 }
            }
        }
    }

    // MARK: Followers

    package enum Admission {
        /// Stream from this LSN, read from the backlog first.
        case resume(FollowerSession, nextLSN: UInt64)
        case fullSync(FollowerSession)
        /// Another connection of this node id is alive: two processes share an id, and letting
        /// each replace the other would have them fight forever.
        case duplicate(String)
    }

    /// Registers an authenticated follower and decides how its stream resumes: from the
    /// backlog when its last durable LSN of this epoch is there, otherwise by a full sync.
    /// A previous connection of the same node replaces only once it is dead (a restarted
    /// follower whose old connection hangs).
    package func admit(
        nodeID: String, remoteAddress: String, channel: any Channel, liveness: SharedLiveness, epoch: UInt64, lastDurableLSN: UInt64
    ) -> Admission {
        var work = AfterUnlock()
        let admission = state.withLock { state -> Admission in
            if let previous = state.sessionsByNode[nodeID] {
                let now = ContinuousClock.now
                if previous.liveness.withLock({ $0.isAlive(at: now) }) {
                    return .duplicate(
                        "node id \"\(nodeID)\" is already connected from \(previous.remoteAddress) and alive; give every follower its own node id"
                    )
                }
                state.live[previous.connectionID] = nil
                state.inSync.remove(nodeID)
                if let waiter = previous.state.withLock({ FollowerSession.close(&$0, reason: .replaced) }) { work.wake.append(waiter) }
                work.close.append((previous, .replaced, "the same node connected again"))
                count(eviction: .replaced, of: nodeID, detail: "the same node connected again", in: &state)
            }
            let id = state.nextConnectionID
            state.nextConnectionID += 1
            let queue = OutboundQueue(maximumBytes: settings.queueBytes, maximumFrames: settings.queueFrames)
            let nextLSN = lastDurableLSN + 1
            let canResume: Bool
            if epoch == settings.epoch {
                switch state.backlog.batches(from: nextLSN, nextLSN: state.nextSealedLSN, upToBytes: 0) {
                case .batches: canResume = true
                case .unavailable: canResume = false
                }
            } else {
                canResume = false
            }
            let mode: FollowerSession.Mode = canResume ? .catchingUp(nextLSN: nextLSN) : .syncing
            let session = FollowerSession(
                connectionID: id, nodeID: nodeID, remoteAddress: remoteAddress, channel: channel, liveness: liveness,
                mode: mode, queue: queue, ackedLSN: canResume ? lastDurableLSN : 0
            )
            state.sessionsByNode[nodeID] = session
            let now = ContinuousClock.now
            state.inSync.update(nodeID, .init(ackedLSN: canResume ? lastDurableLSN : 0, caughtUpAt: Self.neverCaughtUp(now), isLive: false))
            if canResume {
                state.counters.partialResyncs += 1
                return .resume(session, nextLSN: nextLSN)
            }
            state.counters.fullSyncs += 1
            return .fullSync(session)
        }
        perform(work)
        return admission
    }

    package enum NextWork {
        case frames([SealedBatch])
        case wait
        case closed
    }

    /// What a follower's writer should send next: backlog frames while it catches up, then
    /// its live queue. Switching from catching up to live happens under the same lock that
    /// seals batches, so no frame falls between the two.
    package func nextWork(for session: FollowerSession) -> NextWork {
        var work = AfterUnlock()
        let next = state.withLock { state -> NextWork in
            session.state.withLock { sessionState -> NextWork in
                switch sessionState.mode {
                case .closed:
                    return .closed
                case .syncing:
                    return .wait
                case .catchingUp(let nextLSN):
                    switch state.backlog.batches(from: nextLSN, nextLSN: state.nextSealedLSN, upToBytes: settings.writerTakeBytes) {
                    case .unavailable:
                        _ = FollowerSession.close(&sessionState, reason: .backlogExceeded)
                        let detail = "needs LSN \(nextLSN), backlog holds \(state.backlog.firstLSN.map(String.init) ?? "nothing")"
                        work.close.append((session, .backlogExceeded, detail))
                        forget(session, in: &state, reason: .backlogExceeded, detail: detail)
                        return .closed
                    case .batches(let batches) where batches.isEmpty:
                        sessionState.mode = .live
                        state.live[session.connectionID] = session
                        return .wait
                    case .batches(let batches):
                        sessionState.mode = .catchingUp(nextLSN: batches.last!.lastLSN + 1)
                        sessionState.sentLSN = batches.last!.lastLSN
                        return .frames(batches)
                    }
                case .live:
                    if sessionState.queue.isEmpty { return .wait }
                    let batches = sessionState.queue.take(upToBytes: settings.writerTakeBytes)
                    sessionState.sentLSN = batches.last!.lastLSN
                    return .frames(batches)
                }
            }
        }
        if case .frames = next, !state.withLock({ $0.throttled.isEmpty }) {
            // The queue just made room: a held-back producer may go.
            state.withLock { releaseThrottled(&$0, into: &work) }
        }
        perform(work)
        return next
    }

    /// A full sync finished sending files as of `cutLSN`: stream from the next LSN.
    package func finishFullSync(_ session: FollowerSession, cutLSN: UInt64) {
        let waiter = session.state.withLock { sessionState -> CheckedContinuation<Void, Never>? in
            guard sessionState.mode == .syncing else { return nil }
            sessionState.mode = .catchingUp(nextLSN: cutLSN + 1)
            sessionState.sentLSN = cutLSN
            return FollowerSession.takeWaiter(&sessionState)
        }
        waiter?.resume()
    }

    /// A follower acked `lsn` as durable: update its place in the in-sync decision and resolve
    /// the confirms that now hold.
    /// Returns the bytes of data frames the ack settled.
    @discardableResult
    package func recordAck(_ session: FollowerSession, lsn: UInt64) -> Int {
        var work = AfterUnlock()
        let settled = state.withLock { state -> Int in
            let (acked, isLive, settled) = session.state.withLock { sessionState -> (UInt64, Bool, Int) in
                sessionState.ackedLSN = max(sessionState.ackedLSN, lsn)
                let settled = sessionState.settle(ackedThrough: lsn)
                return (sessionState.ackedLSN, sessionState.mode == .live, settled)
            }
            guard state.sessionsByNode[session.nodeID] === session else { return settled }
            let now = ContinuousClock.now
            let previous = state.inSync.followers[session.nodeID]
            // Caught up at the moment the first batch it lacks was sealed (or now, if it lacks none).
            let caughtUpAt: ContinuousClock.Instant =
                acked + 1 >= state.nextSealedLSN ? now
                : state.backlog.batch(startingAt: acked + 1)?.sealedAt ?? previous?.caughtUpAt ?? Self.neverCaughtUp(now)
            state.inSync.update(session.nodeID, .init(ackedLSN: acked, caughtUpAt: max(caughtUpAt, previous?.caughtUpAt ?? caughtUpAt), isLive: isLive))
            resolveConfirms(&state, into: &work)
            return settled
        }
        perform(work)
        return settled
    }

    private static func neverCaughtUp(_ now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        now - .seconds(365 * 24 * 3600)
    }

    // MARK: Confirms and the in-sync set

    /// Starts holding confirms to the policy (called once the leader listens).
    package func startGating() {
        state.withLock { $0.isGating = true }
    }

    /// Resolves when the policy holds for `lsn`: every in-sync follower (evict mode) or `n` of
    /// them (min-ISR mode) acked it durably; throws `notEnoughReplicas` at `timeout`.
    package func waitForReplication(upTo lsn: UInt64, timeout: Duration) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let resolved = state.withLock { state -> Bool in
                if !state.isGating || state.inSync.confirms(lsn, policy: settings.policy) {
                    state.inSync.didConfirm(lsn)
                    return true
                }
                let id = state.nextWaiterID
                state.nextWaiterID += 1
                state.confirmWaiters.append(ConfirmWaiter(id: id, lsn: lsn, deadline: .now + timeout, timeout: timeout, continuation: continuation))
                return false
            }
            if resolved {
                continuation.resume()
            } else {
                // Only a confirm that waits seals its batch early: sealing for one that already
                // holds (an empty in-sync set) would send a frame per confirm, which no follower
                // catching up under sustained confirms could keep pace with.
                sealOpenBatch(ifHolding: lsn)
            }
        }
    }

    /// In min-ISR(n) mode, waits (in arrival order) until `n` in-sync followers are live with
    /// room in their queues for `bytes` more, so the write cannot push a needed follower out;
    /// throws `notEnoughReplicas` at `timeout`. Evict mode never waits here.
    /// A cancelled producer leaves the queue at once with `CancellationError`.
    package func admitWrite(bytes: Int, timeout: Duration) async throws {
        guard case .minInSyncReplicas = settings.policy else { return }
        let id = state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let decided = state.withLock { state -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if !state.isGating || (state.throttled.isEmpty && hasRoom(&state, bytes: bytes)) { return .success(()) }
                    // `lsn` carries the byte count for a throttled producer.
                    state.throttled.append(ConfirmWaiter(id: id, lsn: UInt64(bytes), deadline: .now + timeout, timeout: timeout, continuation: continuation))
                    return nil
                }
                if let decided { continuation.resume(with: decided) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> ConfirmWaiter? in
                guard let index = state.throttled.firstIndex(where: { $0.id == id }) else { return nil }
                return state.throttled.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Whether `n` in-sync followers are live with room for `bytes` more (plus one batch).
    private func hasRoom(_ state: inout State, bytes: Int) -> Bool {
        guard case .minInSyncReplicas(let n) = settings.policy else { return true }
        var ready = 0
        for session in state.live.values where state.inSync.persisted.contains(session.nodeID) {
            // Queued plus written-and-unacked: bytes in socket buffers count too, or the
            // producers would run ahead of a slow follower by whatever the kernel buffers.
            if session.state.withLock({ $0.lagBytes + bytes + settings.batchBytes <= settings.queueBytes }) { ready += 1 }
        }
        return ready >= n
    }

    /// Lets held-back producers go, in arrival order, as long as their writes together fit:
    /// each released write counts against the room left for the next, so a burst of releases
    /// cannot overflow a queue (and one release per ack would cap producers at the ack rate).
    private func releaseThrottled(_ state: inout State, into work: inout AfterUnlock) {
        var reserved = 0
        while let first = state.throttled.first, hasRoom(&state, bytes: reserved + Int(first.lsn)) {
            reserved += Int(first.lsn)
            state.throttled.removeFirst()
            work.confirmed.append(first.continuation)
        }
    }

    /// Seals the open batch when it holds `lsn`: a confirm is waiting on it.
    private func sealOpenBatch(ifHolding lsn: UInt64) {
        var work = AfterUnlock()
        state.withLock { state in
            if !state.builder.isEmpty, lsn >= state.builder.firstLSN { seal(&state, into: &work) }
        }
        perform(work)
    }

    private func resolveConfirms(_ state: inout State, into work: inout AfterUnlock) {
        releaseThrottled(&state, into: &work)
        guard !state.confirmWaiters.isEmpty else { return }
        let inSync = state.inSync
        let policy = settings.policy
        var highest: UInt64 = 0
        state.confirmWaiters.removeAll { waiter in
            guard inSync.confirms(waiter.lsn, policy: policy) else { return false }
            work.confirmed.append(waiter.continuation)
            highest = max(highest, waiter.lsn)
            return true
        }
        state.inSync.didConfirm(highest)
    }

    /// Periodic work: followers that lag too long leave, caught-up ones join, and confirms past
    /// their deadline fail. Returns the in-sync set to persist, if it should change.
    package func tick() -> Set<String>? {
        var work = AfterUnlock()
        let change = state.withLock { state -> Set<String>? in
            let now = ContinuousClock.now
            // Live-ness can change without an ack (a follower that just went live).
            for session in state.sessionsByNode.values {
                let isLive = session.state.withLock { $0.mode == .live }
                if var follower = state.inSync.followers[session.nodeID], follower.isLive != isLive {
                    follower.isLive = isLive
                    state.inSync.update(session.nodeID, follower)
                }
            }
            let persisted = state.inSync.persisted.count
            let held = state.inSync
            state.confirmWaiters.removeAll { waiter in
                guard waiter.deadline <= now else { return false }
                state.counters.notEnoughReplicasErrors += 1
                let needed: String = switch settings.policy {
                case .evictSlowFollowers: "all \(persisted) in-sync followers"
                case .minInSyncReplicas(let n): "\(n) in-sync followers"
                }
                work.failed.append((waiter.continuation, .notEnoughReplicas(
                    "LSN \(waiter.lsn) is held by \(held.membersHolding(waiter.lsn)) of \(persisted) in-sync followers; the policy \(settings.policy) needs \(needed) (waited \(waiter.timeout))"
                )))
                return true
            }
            while let first = state.throttled.first, first.deadline <= now {
                state.throttled.removeFirst()
                state.counters.notEnoughReplicasErrors += 1
                let live = state.live.values.filter { held.persisted.contains($0.nodeID) }.count
                work.failed.append((first.continuation, .notEnoughReplicas(
                    "write of \(first.lsn) bytes refused: \(live) in-sync followers are live with room, the policy \(settings.policy) needs \(needed(settings.policy)) (waited \(first.timeout)); nothing was written"
                )))
            }
            let change = state.inSync.nextChange(at: now)
            // A joiner that stopped qualifying no longer holds confirms back.
            resolveConfirms(&state, into: &work)
            return change
        }
        perform(work)
        return change
    }

    private func needed(_ policy: ReplicationPolicy) -> String {
        switch policy {
        case .evictSlowFollowers: "every in-sync follower"
        case .minInSyncReplicas(let n): "\(n)"
        }
    }

    /// Producers held back by the min-ISR policy right now.
    package var throttledProducers: Int { state.withLock { $0.throttled.count } }

    /// The coordinator stored `members`: confirms may rely on them now.
    package func inSyncPersisted(_ members: Set<String>?) {
        var work = AfterUnlock()
        state.withLock { state in
            if let members { state.inSync.didPersist(members) } else { state.inSync.failedToPersist() }
            resolveConfirms(&state, into: &work)
        }
        perform(work)
    }

    /// The persisted in-sync set and the highest LSN a confirm holds for now.
    package var inSyncSnapshot: (members: [String], confirmedLSN: UInt64) {
        state.withLock { state in
            let members = state.inSync.persisted.sorted()
            let acks = members.map { state.inSync.followers[$0]?.ackedLSN ?? 0 }.sorted(by: >)
            let last = state.nextLSN - 1
            let confirmed: UInt64 = switch settings.policy {
            case .evictSlowFollowers: acks.last.map { min($0, last) } ?? last
            case .minInSyncReplicas(let n): n <= acks.count ? acks[n - 1] : 0
            }
            return (members, confirmed)
        }
    }

    /// Evicts a follower for a reason found outside the leader's lock (timeouts, bad frames).
    package func evict(_ session: FollowerSession, reason: EvictionReason, detail: String) {
        var work = AfterUnlock()
        state.withLock { state in
            let (wasOpen, waiter) = session.state.withLock { sessionState in
                if case .closed = sessionState.mode { return (false, nil as CheckedContinuation<Void, Never>?) }
                return (true, FollowerSession.close(&sessionState, reason: reason))
            }
            if let waiter { work.wake.append(waiter) }
            guard wasOpen else { return }
            state.live[session.connectionID] = nil
            forget(session, in: &state, reason: reason, detail: detail)
            work.close.append((session, reason, detail))
        }
        perform(work)
    }

    /// The connection ended on its own (the follower left): drop it without counting an eviction.
    package func remove(_ session: FollowerSession) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.live[session.connectionID] = nil
            leave(session, in: &state)
            return session.state.withLock { FollowerSession.close(&$0, reason: .shutdown) }
        }
        waiter?.resume()
    }

    /// Every session, for shutdown and status.
    package var sessions: [FollowerSession] { state.withLock { Array($0.sessionsByNode.values) } }

    package var counters: Counters { state.withLock { $0.counters } }

    /// The last LSN of the last sealed batch: always a batch boundary in the backlog.
    package var sealedThroughLSN: UInt64 { state.withLock { $0.nextSealedLSN - 1 } }

    /// The last LSN assigned so far (0 before the first).
    package var lastAssignedLSN: UInt64 { state.withLock { $0.nextLSN - 1 } }

    package var backlogRange: (first: UInt64?, last: UInt64?, bytes: Int) {
        state.withLock { ($0.backlog.firstLSN, $0.backlog.lastLSN, $0.backlog.bytes) }
    }

    // MARK: Full sync cut

    package enum CutAttempt {
        /// Consistent: these handles show every file exactly as of `cutLSN`.
        case cut(cutLSN: UInt64, files: [(path: ReplicatedPath, handle: FileHandle, size: Int)])
        /// Open these paths (new, or replaced since they were opened) and try again.
        case reopen([ReplicatedPath])
        /// A replace or delete is under way; try again shortly.
        case busy
    }

    /// The files the leader knows with their generations, to open before a cut.
    package func fileGenerations() -> [ReplicatedPath: UInt64] {
        state.withLock { $0.files.mapValues(\.generation) }
    }

    /// Tries to take a consistent cut with the handles a full sync opened beforehand.
    ///
    /// Appends only grow files, so a handle opened earlier shows every byte up to the size
    /// recorded here; a replace or delete bumps the generation, so a stale handle is caught.
    package func takeCut(opened: [ReplicatedPath: (handle: FileHandle, generation: UInt64)]) -> CutAttempt {
        var work = AfterUnlock()
        let attempt = state.withLock { state -> CutAttempt in
            if state.files.values.contains(where: \.isChanging) { return .busy }
            let stale = state.files.compactMap { path, file in opened[path]?.generation == file.generation ? nil : path }
            if !stale.isEmpty { return .reopen(stale) }
            seal(&state, into: &work)
            let files = state.files.map { path, file in (path: path, handle: opened[path]!.handle, size: file.size) }
            return .cut(cutLSN: state.nextLSN - 1, files: files.sorted { $0.path.string < $1.path.string })
        }
        perform(work)
        return attempt
    }
}
