import Synchronization

/// The subscribers of a stream of events that a leader or follower publishes as it works.
/// Publishing never waits: each subscriber's stream buffers a bounded number of events and
/// drops the oldest beyond it, so a broker that reads slowly loses events, never stalls
/// replication.
final class EventSubscribers<Event: Sendable>: Sendable {
    private struct State {
        var next = 0
        var continuations: [Int: AsyncStream<Event>.Continuation] = [:]
        /// Set by ``finish()``: later subscriptions get a stream that has already ended.
        var finished = false
    }

    private let state = Mutex(State())

    /// Whether anyone listens: a publisher skips preparing events nobody reads.
    var isEmpty: Bool { state.withLock { $0.continuations.isEmpty } }

    func subscribe(bufferingNewest limit: Int) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        let id: Int? = state.withLock { state in
            guard !state.finished else { return nil }
            defer { state.next += 1 }
            state.continuations[state.next] = continuation
            return state.next
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: Event) {
        publish(contentsOf: CollectionOfOne(event))
    }

    /// Yields `events` in order to every stream, outside the lock. Callers publish one at a
    /// time, so every stream sees the same order.
    func publish(contentsOf events: some Collection<Event>) {
        guard !events.isEmpty else { return }
        let continuations = state.withLock { Array($0.continuations.values) }
        for continuation in continuations {
            for event in events { continuation.yield(event) }
        }
    }

    /// Ends every stream: the leader or follower stopped.
    func finish() {
        let continuations = state.withLock { state in
            state.finished = true
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
