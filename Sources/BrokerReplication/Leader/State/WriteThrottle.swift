import DequeModule

/// The min-ISR policy's hold on producers: a write of `bytes` goes only while `n` in-sync
/// followers are live with room for it, so the write cannot push a needed follower out.
///
/// Held writes go in arrival order. Room is asked of the caller (`hasRoom`), which knows the
/// followers' queues; the throttle only decides who goes and who waits. Generic over
/// `Waiter`, what the owner resumes.
struct WriteThrottle<Waiter> {
    struct Held {
        var id: UInt64
        var bytes: Int
        var deadline: ContinuousClock.Instant
        var timeout: Duration
        var waiter: Waiter
    }

    private(set) var held: Deque<Held> = []

    /// A producer asks to write `bytes`.
    /// - Returns: true when it may go now (nobody is held before it and there is room);
    ///   otherwise it is held until released, cancelled or past `timeout`.
    mutating func request(
        id: UInt64, bytes: Int, waiter: Waiter, timeout: Duration, now: ContinuousClock.Instant, hasRoom: (Int) -> Bool
    ) -> Bool {
        if held.isEmpty, hasRoom(bytes) { return true }
        held.append(Held(id: id, bytes: bytes, deadline: now + timeout, timeout: timeout, waiter: waiter))
        return false
    }

    /// Lets held producers go, in arrival order, as long as their writes together fit: each
    /// released write counts against the room left for the next, so a burst of releases cannot
    /// overflow a queue (and one release per ack would cap producers at the ack rate).
    mutating func release(hasRoom: (Int) -> Bool) -> [Waiter] {
        var reserved = 0
        var released: [Waiter] = []
        while let first = held.first, hasRoom(reserved + first.bytes) {
            reserved += first.bytes
            held.removeFirst()
            released.append(first.waiter)
        }
        return released
    }

    /// The held producers past their deadline, oldest first, removed.
    mutating func expire(at now: ContinuousClock.Instant) -> [Held] {
        var expired: [Held] = []
        while let first = held.first, first.deadline <= now {
            expired.append(held.removeFirst())
        }
        return expired
    }

    /// Every held producer, removed: the leader stepped down and takes no more writes.
    mutating func removeAll() -> [Held] {
        defer { held = [] }
        return Array(held)
    }

    /// A held producer was cancelled: it leaves the queue.
    mutating func cancel(id: UInt64) -> Waiter? {
        guard let index = held.firstIndex(where: { $0.id == id }) else { return nil }
        return held.remove(at: index).waiter
    }
}
