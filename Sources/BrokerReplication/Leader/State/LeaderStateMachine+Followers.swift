extension LeaderStateMachine {
    enum Admission: Equatable, Sendable {
        /// Stream from this LSN, read from the backlog first.
        case resume(nextLSN: UInt64)
        case fullSync
        /// Another connection of this node id is alive: two processes share an id, and letting
        /// each replace the other would have them fight forever.
        case duplicate(String)
    }

    /// Registers an authenticated follower and decides how its stream resumes: from the
    /// backlog when its last durable LSN of this epoch is there, or LSN 1 when its data is
    /// where this epoch started; otherwise by a full sync.
    /// A previous connection of the same node is replaced only once it is dead (`isAlive`
    /// says no): a restarted follower whose old connection hangs.
    mutating func admit(
        _ link: Link, nodeID: String, remoteAddress: String, epoch: UInt64, lastDurableLSN: UInt64,
        at now: ContinuousClock.Instant, isAlive: (Link) -> Bool
    ) -> (admission: Admission, actions: Actions) {
        var actions = Actions()
        if let previous = followers.current(of: nodeID) {
            if isAlive(previous.link) {
                let reason = "node id \"\(nodeID)\" is already connected from \(previous.remoteAddress) and alive; give every follower its own node id"
                return (.duplicate(reason), actions)
            }
            followers.remove(previous.link.id)
            evicted(previous, reason: .replaced, detail: "the same node connected again", at: now, into: &actions)
        }
        // Same epoch: resume from the backlog. An earlier epoch whose end this epoch started
        // from (the epoch history): the follower holds these files as of LSN 0, so resume at 1.
        let acrossEpochs = epoch != settings.epoch
            && settings.history.startsFrom(epoch: epoch, lastLSN: lastDurableLSN, current: settings.epoch)
        let position = acrossEpochs ? 0 : lastDurableLSN
        let nextLSN = position + 1
        var canResume = false
        if epoch == settings.epoch || acrossEpochs,
            case .batches = sequencer.backlog.batches(from: nextLSN, nextLSN: sequencer.nextSealedLSN, upToBytes: 0)
        {
            canResume = true
        }
        let acked = canResume ? position : 0
        followers.insert(.init(
            link: link, nodeID: nodeID, remoteAddress: remoteAddress, mode: canResume ? .catchingUp(nextLSN: nextLSN) : .syncing,
            queue: OutboundQueue(maximumBytes: settings.queueBytes, maximumFrames: settings.queueFrames), ackedLSN: acked, sentLSN: acked
        ))
        confirms.inSync.update(nodeID, .init(ackedLSN: acked, caughtUpAt: Self.neverCaughtUp(now), isLive: false))
        if canResume {
            counters.partialResyncs += 1
            if acrossEpochs { counters.epochResumes += 1 }
            return (.resume(nextLSN: nextLSN), actions)
        }
        counters.fullSyncs += 1
        return (.fullSync, actions)
    }

    enum NextWork: Sendable {
        /// Frames to write; `fromBacklog` while the follower catches up (paced by
        /// `catchUpBytesPerSecond`), false for its live queue.
        case frames([SealedBatch], fromBacklog: Bool = false)
        case wait
        case closed
    }

    /// What a follower's writer should send next: backlog frames while it catches up, then
    /// its live queue. Going live happens in the same state that seals batches, so no frame
    /// falls between the backlog and the queue.
    mutating func nextWork(for id: Link.ID, at now: ContinuousClock.Instant) -> (work: NextWork, actions: Actions) {
        var actions = Actions()
        guard var follower = followers[id] else { return (.closed, actions) }
        let work: NextWork
        switch follower.mode {
        case .syncing:
            return (.wait, actions)
        case .catchingUp(let nextLSN):
            switch sequencer.backlog.batches(from: nextLSN, nextLSN: sequencer.nextSealedLSN, upToBytes: settings.writerTakeBytes) {
            case .unavailable:
                let detail = "needs LSN \(nextLSN), backlog holds \(sequencer.backlog.firstLSN.map(String.init) ?? "nothing")"
                followers.remove(id)
                evicted(follower, reason: .backlogExceeded, detail: detail, at: now, into: &actions)
                return (.closed, actions)
            case .batches(let batches) where batches.isEmpty:
                follower.mode = .live
                work = .wait
            case .batches(let batches):
                follower.mode = .catchingUp(nextLSN: batches.last!.lastLSN + 1)
                follower.sentLSN = batches.last!.lastLSN
                work = .frames(batches, fromBacklog: true)
            }
        case .live:
            if follower.queue.isEmpty { return (.wait, actions) }
            let batches = follower.queue.take(upToBytes: settings.writerTakeBytes)
            follower.sentLSN = batches.last!.lastLSN
            work = .frames(batches)
        }
        followers.update(id) { $0 = follower }
        if case .frames = work, !throttle.held.isEmpty {
            // The queue just made room: a held-back producer may go.
            actions.confirmed += releaseThrottled()
        }
        return (work, actions)
    }

    /// The writer wrote `batches` to the socket.
    mutating func recordSent(_ batches: [SealedBatch], by id: Link.ID) {
        followers.update(id) { $0.sent(batches) }
    }

    mutating func recordSyncProgress(_ progress: SyncProgress, of id: Link.ID) {
        followers.update(id) { $0.syncProgress = progress }
    }

    /// A full sync finished sending files as of `cutLSN`: stream from the next LSN.
    mutating func finishFullSync(_ id: Link.ID, cutLSN: UInt64) -> Actions {
        var actions = Actions()
        guard let follower = followers[id], follower.mode == .syncing else { return actions }
        followers.update(id) { follower in
            follower.mode = .catchingUp(nextLSN: cutLSN + 1)
            follower.sentLSN = cutLSN
        }
        actions.wake.append(follower.link)
        return actions
    }

    enum AckOutcome: Equatable, Sendable {
        /// Recorded; the ack settled these bytes of data frames.
        case recorded(settledBytes: Int)
        /// The ack names an LSN never sent on this connection: a protocol violation.
        case beyondSent(sentLSN: UInt64)
        /// The connection is no longer in the table (evicted or gone).
        case unknown
    }

    /// A follower acked `lsn` as durable: update its place in the in-sync decision and resolve
    /// the confirms that now hold.
    mutating func recordAck(_ lsn: UInt64, from id: Link.ID, at now: ContinuousClock.Instant) -> (outcome: AckOutcome, actions: Actions) {
        var actions = Actions()
        guard var follower = followers[id] else { return (.unknown, actions) }
        guard lsn <= follower.sentLSN else { return (.beyondSent(sentLSN: follower.sentLSN), actions) }
        follower.ackedLSN = max(follower.ackedLSN, lsn)
        let settled = follower.settle(ackedThrough: lsn)
        followers.update(id) { $0 = follower }
        let acked = follower.ackedLSN
        let previous = confirms.inSync.followers[follower.nodeID]
        // Caught up at the moment the first batch it lacks was sealed (or now, if it lacks none).
        let caughtUpAt: ContinuousClock.Instant =
            acked + 1 >= sequencer.nextSealedLSN ? now
            : sequencer.backlog.batch(startingAt: acked + 1)?.sealedAt ?? previous?.caughtUpAt ?? Self.neverCaughtUp(now)
        confirms.inSync.update(
            follower.nodeID,
            .init(ackedLSN: acked, caughtUpAt: max(caughtUpAt, previous?.caughtUpAt ?? caughtUpAt), isLive: follower.mode == .live)
        )
        resolveConfirms(into: &actions)
        return (.recorded(settledBytes: settled), actions)
    }

    static func neverCaughtUp(_ now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        now - .seconds(365 * 24 * 3600)
    }

    enum CutAttempt: Equatable, Sendable {
        /// Consistent: every file exactly as of `cutLSN`, at these sizes and generations, in no
        /// particular order (the caller sorts them, outside the lock).
        case cut(cutLSN: UInt64, files: [FileAtCut])
        /// Open these paths again (replaced or deleted since they were opened) and try again.
        case reopen([ReplicatedPath])
        /// A replace or delete is under way; try again shortly.
        case busy
    }

    struct FileAtCut: Equatable, Sendable {
        var path: ReplicatedPath
        var size: Int
        /// A handle opened after the cut shows the file as of the cut only while this holds.
        var generation: UInt64
    }

    /// The files the leader knows with their generations, to open before a cut. A file whose
    /// replace or delete is under way is left out: it may not exist yet, or never will (a
    /// failed replace of `a/b` while `a` is a regular file), and the cut waits for it anyway.
    /// Whether `path` is still the file it was at `generation`, with no replace or delete under
    /// way: a handle opened before this answer shows it as of a cut at that generation.
    func isUnchanged(_ path: ReplicatedPath, generation: UInt64) -> Bool {
        guard let file = sequencer.files[path] else { return false }
        return file.generation == generation && !file.isChanging
    }

    var fileGenerations: [ReplicatedPath: UInt64] {
        sequencer.files.compactMapValues { $0.isChanging ? nil : $0.generation }
    }

    /// Tries to take a consistent cut with files the full sync opened at `opened` generations
    /// (any subset of the files); a cut seals the open batch, so the cut LSN is a batch boundary.
    mutating func takeCut(opened: [ReplicatedPath: UInt64], at now: ContinuousClock.Instant) -> (attempt: CutAttempt, actions: Actions) {
        var actions = Actions()
        switch FullSyncCut.decide(files: sequencer.files, opened: opened) {
        case .busy:
            return (.busy, actions)
        case .reopen(let paths):
            return (.reopen(paths), actions)
        case .consistent:
            seal(at: now, into: &actions)
            let files = sequencer.files.map { FileAtCut(path: $0.key, size: $0.value.size, generation: $0.value.generation) }
            return (.cut(cutLSN: sequencer.lastAssignedLSN, files: files), actions)
        }
    }
}
