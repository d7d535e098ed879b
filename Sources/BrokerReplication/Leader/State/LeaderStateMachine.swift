import NIOCore

/// The leader's limits, from its configuration.
struct LeaderSettings: Sendable {
    var epoch: UInt64
    var batchBytes: Int
    var queueBytes: Int
    var queueFrames: Int
    var backlogBytes: Int
    var policy: ReplicationPolicy = .evictSlowFollowers
    var maxLagTime: Duration = .seconds(5)
    /// About how many bytes a follower's writer takes per turn.
    var writerTakeBytes = 1 << 20
    /// Writer handles kept open at most (plus one per write in progress).
    var maximumOpenFiles = 256
    /// The epochs this data directory served, this one begun: which followers of an earlier
    /// epoch hold exactly the files this epoch started from.
    var history = EpochHistory()
}

/// What the leader counts for its status and metrics.
struct LeaderCounters: Sendable, Equatable {
    struct Eviction: Sendable, Equatable {
        var nodeID: String
        var reason: EvictionReason
        var detail: String
        var at: ContinuousClock.Instant
    }

    var evictions: [EvictionReason: Int] = [:]
    /// The last ``LeaderStatus/Eviction/kept`` evictions, newest last.
    var recentEvictions: [Eviction] = []
    var fullSyncs = 0
    var partialResyncs = 0
    /// Of ``partialResyncs``, those that resumed a follower of an earlier epoch.
    var epochResumes = 0
    var syncContentBytes = 0
    var syncWireBytes = 0
    var sealedBatches = 0
    var payloadBytes = 0
    var wireBytes = 0
    var notEnoughReplicasErrors = 0
}

/// Every decision of the leader about its shared state, with no lock, no clock and no socket.
///
/// Each event takes the time as `now` and returns what to do once the owner's lock is released
/// (``Actions``): ``LeaderCore`` holds the one lock around this value and performs the actions
/// after unlocking, as swift-nio's `NIOAsyncWriter` does. The state is split by concern, each
/// part a value type of its own: ``Sequencer`` (LSNs, the open batch, the backlog, files),
/// ``FollowerTable`` (followers and their queues), ``Confirms`` (confirm waiters and the in-sync
/// set), ``WriteThrottle`` (the min-ISR hold on producers) and ``FullSyncCut``. This type only
/// composes them where one decision needs several.
///
/// Generic over `Link`, the handle of one follower connection, and `Waiter`, what a producer
/// waits on; the leader uses ``FollowerSession`` and a continuation, tests plain values.
struct LeaderStateMachine<Link: Identifiable, Waiter> {
    /// Work for the owner to do after unlocking, in this order: wake writers, resume
    /// producers, close evicted links (a close also wakes the link's writer). One event can
    /// wake, evict and confirm many at once, hence lists rather than one case.
    struct Actions {
        var wake: [Link] = []
        var confirmed: [Waiter] = []
        var failed: [(Waiter, ReplicationError)] = []
        var close: [(link: Link, reason: EvictionReason, detail: String)] = []

        var isEmpty: Bool { wake.isEmpty && confirmed.isEmpty && failed.isEmpty && close.isEmpty }
    }

    // The parts are internal, not private(set): this type's events live in three files
    // (this one, +Followers and +Confirms), and only they change them.
    let settings: LeaderSettings
    var sequencer: Sequencer
    var followers = FollowerTable<Link>()
    var confirms: Confirms<Waiter>
    var throttle = WriteThrottle<Waiter>()
    var counters = LeaderCounters()
    /// Why this leader stepped down (nil while it leads): it confirms and admits nothing more.
    var steppedDown: String?
    private var nextWaiterID: UInt64 = 1

    init(settings: LeaderSettings, files: [(path: ReplicatedPath, size: Int)]) {
        self.settings = settings
        self.sequencer = Sequencer(batchBytes: settings.batchBytes, backlogBytes: settings.backlogBytes, files: files)
        self.confirms = Confirms(policy: settings.policy, maxLagTime: settings.maxLagTime)
    }

    // MARK: Sequencing and batching

    /// Gives `record` the next LSN, adds it to the open batch, records what it did to the
    /// file, and seals the batch when it is full.
    mutating func commit(_ record: ReplicationRecord, change: Sequencer.FileChange, now: ContinuousClock.Instant) -> (lsn: UInt64, actions: Actions) {
        var actions = Actions()
        let lsn = sequencer.assign(record, change: change)
        if sequencer.isBatchFull { seal(at: now, into: &actions) }
        return (lsn, actions)
    }

    /// Gives each of `records` the next LSN, in order, as appends to `path` that follow one
    /// another from byte `offset` on; records the file's new size once, and seals the batch
    /// whenever it fills, so a sealed batch may end inside the range. No full-sync cut can fall
    /// inside the range: it is one event.
    /// - Returns: the LSN of the last record.
    mutating func commit(
        appends records: ArraySlice<ByteBuffer>, to path: ReplicatedPath, startingAt offset: Int, now: ContinuousClock.Instant
    ) -> (lsn: UInt64, actions: Actions) {
        precondition(!records.isEmpty, "a range of appends holds at least one record")
        var actions = Actions()
        var offset = offset
        for bytes in records {
            _ = sequencer.assignAppend(of: bytes, to: path, at: offset)
            offset += bytes.readableBytes
            if sequencer.isBatchFull { seal(at: now, into: &actions) }
        }
        sequencer.setSize(offset, of: path)
        return (sequencer.lastAssignedLSN, actions)
    }

    mutating func beginChanging(_ path: ReplicatedPath) -> Sequencer.FileState? {
        sequencer.beginChanging(path)
    }

    mutating func abandonChanging(_ path: ReplicatedPath, restoring previous: Sequencer.FileState?) {
        sequencer.abandonChanging(path, restoring: previous)
    }

    /// Seals the open batch, if any (flush, the flush tick).
    mutating func sealOpenBatch(at now: ContinuousClock.Instant) -> Actions {
        var actions = Actions()
        seal(at: now, into: &actions)
        return actions
    }

    /// Compresses the open batch once, keeps it in the backlog and offers the same frame to
    /// every live follower; a follower whose queue is full is evicted on the spot.
    mutating func seal(at now: ContinuousClock.Instant, into actions: inout Actions) {
        guard let sealed = sequencer.seal(at: now) else { return }
        counters.sealedBatches += 1
        counters.payloadBytes += sealed.payloadBytes
        counters.wireBytes += sealed.wireBytes
        let (wake, full) = followers.offer(sealed)
        actions.wake += wake
        for (follower, detail) in full {
            evicted(follower, reason: .queueFull, detail: detail, at: now, into: &actions)
        }
    }

    /// True while any live follower's queue lacks room for `bytes` more: a large write waits
    /// between chunks so that it does not, on its own, overflow a healthy follower.
    func queuesLackRoom(for bytes: Int) -> Bool {
        followers.anyQueueLacksRoom(for: bytes)
    }

    // MARK: Evictions

    /// Evicts a follower for a reason found outside this state (timeouts, bad frames).
    mutating func evict(_ id: Link.ID, reason: EvictionReason, detail: String, at now: ContinuousClock.Instant) -> Actions {
        var actions = Actions()
        if let follower = followers.remove(id) {
            evicted(follower, reason: reason, detail: detail, at: now, into: &actions)
        }
        return actions
    }

    /// The connection ended on its own (the follower left): drop it without counting an eviction.
    mutating func remove(_ id: Link.ID) -> Actions {
        var actions = Actions()
        if let follower = followers.remove(id) {
            leave(follower.nodeID)
            actions.wake.append(follower.link)
        }
        return actions
    }

    /// Counts an eviction of a follower already removed from the table and closes its link.
    mutating func evicted(
        _ follower: FollowerTable<Link>.Follower, reason: EvictionReason, detail: String, at now: ContinuousClock.Instant,
        into actions: inout Actions
    ) {
        counters.evictions[reason, default: 0] += 1
        counters.recentEvictions.append(.init(nodeID: follower.nodeID, reason: reason, detail: detail, at: now))
        if counters.recentEvictions.count > LeaderStatus.Eviction.kept { counters.recentEvictions.removeFirst() }
        leave(follower.nodeID)
        actions.close.append((follower.link, reason, detail))
    }

    /// The node's connection is gone: it leaves the in-sync set at the next persisted change,
    /// unless the node already reconnected with a newer connection.
    mutating func leave(_ nodeID: String) {
        if followers.current(of: nodeID) == nil { confirms.inSync.remove(nodeID) }
    }

    // MARK: Snapshots

    /// The last LSN of the last sealed batch: always a batch boundary in the backlog.
    var sealedThroughLSN: UInt64 { sequencer.nextSealedLSN - 1 }

    var lastAssignedLSN: UInt64 { sequencer.lastAssignedLSN }

    /// The persisted in-sync set, sorted, and the highest LSN a confirm holds for now.
    var inSyncSnapshot: (members: [String], confirmedLSN: UInt64) {
        (confirms.inSync.persisted.sorted(), confirms.confirmedLSN(lastAssigned: sequencer.lastAssignedLSN))
    }

    mutating func takeWaiterID() -> UInt64 {
        defer { nextWaiterID += 1 }
        return nextWaiterID
    }
}

// The leader's links and waiters are Sendable, and so is every answer it hands across the lock.
extension LeaderStateMachine.Actions: Sendable where Link: Sendable, Waiter: Sendable {}
