import Foundation

/// What a leader tells a broker as it happens (``ReplicationLeader/events(bufferingNewest:)``).
public enum LeaderEvent: Sendable, Equatable {
    /// A follower was evicted: the same fields as ``LeaderStatus/recentEvictions``.
    case evicted(LeaderStatus.Eviction)
    /// The in-sync set changed, after the coordinator stored it: the new members (sorted),
    /// who joined and who left.
    case inSyncReplicasChanged(members: [String], joined: [String], left: [String])
}

/// The subscribers of a leader's events: the leader never waits for a reader.
typealias LeaderEvents = EventSubscribers<LeaderEvent>

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
