import Foundation
import Synchronization

/// What a leader tells a broker as it happens (``ReplicationLeader/events(bufferingNewest:)``).
public enum LeaderEvent: Sendable, Equatable {
    /// A follower was evicted: the same fields as ``LeaderStatus/recentEvictions``.
    case evicted(LeaderStatus.Eviction)
    /// The in-sync set changed, after the coordinator stored it: the new members (sorted),
    /// who joined and who left.
    case inSyncReplicasChanged(members: [String], joined: [String], left: [String])
}

/// The subscribers of a leader's events. Publishing never waits: each subscriber's stream
/// buffers a bounded number of events and drops the oldest beyond it, so a broker that reads
/// slowly loses events, never stalls the leader.
final class LeaderEvents: Sendable {
    private let subscribers = Mutex<(next: Int, continuations: [Int: AsyncStream<LeaderEvent>.Continuation], finished: Bool)>((0, [:], false))

    func subscribe(bufferingNewest limit: Int) -> AsyncStream<LeaderEvent> {
        let (stream, continuation) = AsyncStream<LeaderEvent>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        let id: Int? = subscribers.withLock { state in
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
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: LeaderEvent) {
        let continuations = subscribers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield(event) }
    }

    /// Ends every stream: the leader stopped.
    func finish() {
        let continuations = subscribers.withLock { state in
            state.finished = true
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

extension ReplicationLeader {
    /// A stream of this leader's evictions and in-sync set changes from now on, for a broker
    /// that reacts to them (alerts, its own admin API); ``status()`` gives the state at any time.
    ///
    /// Each call returns a new stream of its own. The stream ends when ``run()`` ends. The
    /// leader never waits for a reader: a stream holds at most `limit` unread events and
    /// drops the oldest beyond that.
    ///
    /// - Parameter limit: the unread events a stream keeps (default 1,024).
    public func events(bufferingNewest limit: Int = 1024) -> AsyncStream<LeaderEvent> {
        events.subscribe(bufferingNewest: max(1, limit))
    }
}
