import DequeModule
import Synchronization

/// A change that became durable on a follower (``ReplicationFollower/changes(bufferingNewest:)``):
/// what a broker on a hot standby needs to keep its in-memory indexes warm.
public struct FollowerChange: Sendable, Equatable {
    /// What changed.
    public enum Kind: Sendable, Equatable {
        /// `length` bytes were appended to the file at `path`, from `offset` (its size before).
        case appended(path: String, offset: UInt64, length: Int)
        /// The file at `path` was replaced whole; it now holds `length` bytes.
        case replaced(path: String, length: UInt64)
        /// The file at `path` was deleted (or was already missing).
        case deleted(path: String)
        /// A full sync installed the leader's files as of ``FollowerChange/lsn``: any file may
        /// differ from before, so a broker rescans its data directory.
        case fullSyncInstalled
    }

    /// What changed.
    public var kind: Kind
    /// The leader epoch the change belongs to. LSNs start again at 1 in a new epoch.
    public var epoch: UInt64
    /// The change's LSN: the one the leader's `append`, `replace` or `delete` returned (for a
    /// replace, the LSN of its last chunk); for a full sync, the leader's cut.
    public var lsn: UInt64
    /// Numbers the changes this follower published since it was created: 1, 2, 3… A stream
    /// whose next change skips a number dropped changes because its reader fell behind; the
    /// broker then rescans, as after ``Kind/fullSyncInstalled``.
    public var sequenceNumber: UInt64

    public init(kind: Kind, epoch: UInt64, lsn: UInt64, sequenceNumber: UInt64) {
        self.kind = kind
        self.epoch = epoch
        self.lsn = lsn
        self.sequenceNumber = sequenceNumber
    }
}

/// The follower's change stream: changes of applied records wait here until the group commit
/// makes them durable, then go to every subscriber in LSN order.
///
/// One connection at a time applies and commits, and a commit publishes before the next one
/// starts, so calls never overlap: every stream sees the same order.
final class FollowerChanges: Sendable {
    /// A change applied but not yet durable.
    private struct Pending {
        var lsn: UInt64
        var kind: FollowerChange.Kind
    }

    private struct State {
        var pending = Deque<Pending>()
        var lastSequenceNumber: UInt64 = 0
    }

    private let subscribers = EventSubscribers<FollowerChange>()
    private let state = Mutex(State())

    func subscribe(bufferingNewest limit: Int) -> AsyncStream<FollowerChange> {
        subscribers.subscribe(bufferingNewest: limit)
    }

    /// A batch was applied; record i has LSN `firstLSN + i`. Nothing is kept while nobody listens.
    func applied(_ records: [ReplicationRecord], firstLSN: UInt64) {
        guard !subscribers.isEmpty else { return }
        let changes = records.enumerated().compactMap { index, record in
            Self.kind(of: record).map { Pending(lsn: firstLSN + UInt64(index), kind: $0) }
        }
        state.withLock { $0.pending.append(contentsOf: changes) }
    }

    /// The group commit made everything through `lsn` durable: publishes it.
    func durable(through lsn: UInt64, epoch: UInt64) {
        let changes = state.withLock { state -> [FollowerChange] in
            var durable: [FollowerChange] = []
            while let first = state.pending.first, first.lsn <= lsn {
                state.pending.removeFirst()
                state.lastSequenceNumber += 1
                durable.append(FollowerChange(kind: first.kind, epoch: epoch, lsn: first.lsn, sequenceNumber: state.lastSequenceNumber))
            }
            return durable
        }
        subscribers.publish(contentsOf: changes)
    }

    /// A full sync was installed durably: what was applied before and never made durable is
    /// moot, the files are the leader's as of `lsn`.
    func fullSyncInstalled(epoch: UInt64, lsn: UInt64) {
        let change = state.withLock { state in
            state.pending.removeAll()
            state.lastSequenceNumber += 1
            return FollowerChange(kind: .fullSyncInstalled, epoch: epoch, lsn: lsn, sequenceNumber: state.lastSequenceNumber)
        }
        subscribers.publish(change)
    }

    /// Ends every stream: ``ReplicationFollower/run()`` ended.
    func finish() {
        subscribers.finish()
    }

    /// A replace is one change, at its last chunk; the earlier chunks only fill a temporary file.
    private static func kind(of record: ReplicationRecord) -> FollowerChange.Kind? {
        switch record {
        case .append(let path, let offset, let bytes):
            .appended(path: path.string, offset: offset, length: bytes.readableBytes)
        case .replace(let path, let offset, let chunk, let flags):
            flags.contains(.lastChunk) ? .replaced(path: path.string, length: offset + UInt64(chunk.readableBytes)) : nil
        case .delete(let path):
            .deleted(path: path.string)
        }
    }
}

extension ReplicationFollower {
    /// A stream of this follower's changes from now on, each published once it is durable
    /// here, in LSN order: a broker on a hot standby keeps its in-memory indexes warm with it.
    ///
    /// Durable means what ``FollowerStatus/lastDurableLSN`` means: under
    /// ``ReplicationFollowerConfiguration/Durability/fsync`` a change is published after the
    /// group commit's flush that covers it; under ``ReplicationFollowerConfiguration/Durability/none``
    /// after the group commit that follows its write, with no flush. A full sync publishes
    /// ``FollowerChange/Kind/fullSyncInstalled`` once its files are installed, before any change after it.
    ///
    /// Each call returns a new stream of its own. The stream ends when ``run()`` ends; one
    /// asked for after that has already ended. The follower never waits for a reader: a stream
    /// holds at most `limit` unread changes and drops the oldest beyond that, which shows as a
    /// gap in ``FollowerChange/sequenceNumber``.
    ///
    /// - Parameter limit: the unread changes a stream keeps (default 1,024).
    public func changes(bufferingNewest limit: Int = 1024) -> AsyncStream<FollowerChange> {
        changes.subscribe(bufferingNewest: max(1, limit))
    }
}
