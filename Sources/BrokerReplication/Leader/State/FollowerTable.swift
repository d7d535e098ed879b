import DequeModule

/// The connected followers as the leader's state sees them: where each one's stream stands,
/// its bounded outbound queue, and what it has in flight.
///
/// Generic over `Link`, the handle of one connection (``FollowerSession`` in the leader, a
/// plain value in tests): the table never touches a socket, it hands links back in its
/// answers for the owner to wake or close after unlocking.
struct FollowerTable<Link: Identifiable> {
    enum Mode: Equatable, Sendable {
        /// Receiving a full sync; frames for it come from the backlog afterwards.
        case syncing
        /// Reading from the backlog, starting at this LSN, until it reaches the live end.
        case catchingUp(nextLSN: UInt64)
        /// Caught up: every sealed frame is offered to its queue.
        case live
    }

    struct InFlight: Sendable {
        var lastLSN: UInt64
        var bytes: Int
        var sealedAt: ContinuousClock.Instant
    }

    struct Follower {
        let link: Link
        let nodeID: String
        let remoteAddress: String
        var mode: Mode
        var queue: OutboundQueue
        var ackedLSN: UInt64
        /// The last LSN handed to the socket writer.
        var sentLSN: UInt64
        var syncProgress: SyncProgress?
        /// Data frames written to the socket and not yet acked, oldest first (for lag in bytes
        /// and seconds): bounded by the queue's frame bound plus one take.
        var inFlight: Deque<InFlight> = []
        /// Bytes of data frames written to the socket, and of those acked, on this connection.
        var sentBytes = 0
        var ackedBytes = 0
    }

    /// Every follower not yet evicted or gone, by connection.
    private(set) var followers: [Link.ID: Follower] = [:]
    /// Each node's current connection.
    private var connectionOfNode: [String: Link.ID] = [:]

    /// The current connection of `nodeID`, if any.
    func current(of nodeID: String) -> Follower? {
        connectionOfNode[nodeID].flatMap { followers[$0] }
    }

    subscript(_ id: Link.ID) -> Follower? {
        followers[id]
    }

    /// Adds a follower as its node's current connection (the caller removed any previous one).
    mutating func insert(_ follower: Follower) {
        let id = follower.link.id
        followers[id] = follower
        connectionOfNode[follower.nodeID] = id
    }

    /// Removes a connection; its node has no current connection afterwards unless a newer one replaced it.
    @discardableResult
    mutating func remove(_ id: Link.ID) -> Follower? {
        guard let follower = followers.removeValue(forKey: id) else { return nil }
        if connectionOfNode[follower.nodeID] == id { connectionOfNode[follower.nodeID] = nil }
        return follower
    }

    /// Offers the same sealed frame to every live follower's queue without waiting.
    /// - Returns: the followers to wake, and those whose queue was full: they are removed
    ///   here, and the caller evicts them.
    mutating func offer(_ sealed: SealedBatch) -> (wake: [Link], full: [(follower: Follower, detail: String)]) {
        var wake: [Link] = []
        var full: [Link.ID] = []
        for index in followers.values.indices where followers.values[index].mode == .live {
            switch followers.values[index].queue.trySend(sealed) {
            case .enqueued:
                wake.append(followers.values[index].link)
            case .full:
                full.append(followers.values[index].link.id)
            }
        }
        let evicted = full.compactMap { id -> (follower: Follower, detail: String)? in
            guard let follower = remove(id) else { return nil }
            let queue = follower.queue
            let detail = "outbound queue full (\(queue.queuedBytes) bytes in \(queue.queuedFrames) frames; bound \(queue.maximumBytes) bytes, \(queue.maximumFrames) frames)"
            return (follower, detail)
        }
        return (wake, evicted)
    }

    /// True while any live follower's queue lacks room for `bytes` more (half its bound).
    func anyQueueLacksRoom(for bytes: Int) -> Bool {
        followers.values.contains { $0.mode == .live && $0.queue.queuedBytes + bytes > $0.queue.maximumBytes / 2 }
    }

    /// How many of `members` are live with room for `bytes` more plus `reserve` within their queue bound.
    ///
    /// Queued plus written-and-unacked counts: bytes in socket buffers count too, or producers
    /// would run ahead of a slow follower by whatever the kernel buffers.
    func liveWithRoom(among members: Set<String>, bytes: Int, reserve: Int) -> Int {
        followers.values.reduce(0) { count, follower in
            guard follower.mode == .live, members.contains(follower.nodeID) else { return count }
            return count + (follower.lagBytes + bytes + reserve <= follower.queue.maximumBytes ? 1 : 0)
        }
    }

    /// How many of `members` are live.
    func liveCount(among members: Set<String>) -> Int {
        followers.values.reduce(0) { $0 + ($1.mode == .live && members.contains($1.nodeID) ? 1 : 0) }
    }

    mutating func update(_ id: Link.ID, _ change: (inout Follower) -> Void) {
        guard followers[id] != nil else { return }
        change(&followers[id]!)
    }
}

extension FollowerTable.Follower {
    /// Records frames written to the socket.
    mutating func sent(_ batches: [SealedBatch]) {
        for batch in batches {
            inFlight.append(.init(lastLSN: batch.lastLSN, bytes: batch.wireBytes, sealedAt: batch.sealedAt))
            sentBytes += batch.wireBytes
        }
    }

    /// Settles the in-flight frames an ack covers; returns their bytes.
    mutating func settle(ackedThrough lsn: UInt64) -> Int {
        var bytes = 0
        while let first = inFlight.first, first.lastLSN <= lsn {
            bytes += first.bytes
            inFlight.removeFirst()
        }
        ackedBytes += bytes
        return bytes
    }

    /// Bytes the follower has still to ack: queued plus written and unacked.
    var lagBytes: Int { queue.queuedBytes + sentBytes - ackedBytes }

    /// How long ago the oldest frame it has not acked was sealed; zero when it has them all.
    func lagSeconds(at now: ContinuousClock.Instant) -> Double {
        guard let oldest = inFlight.first?.sealedAt ?? queue.oldestSealedAt else { return 0 }
        let lag = now - oldest
        return Double(lag.components.seconds) + Double(lag.components.attoseconds) / 1e18
    }
}
