import Foundation

/// What a cluster must remember across leader changes: the leader epoch and the in-sync set.
public struct CoordinatorState: Codable, Sendable, Equatable {
    /// The epoch of the newest leader.
    public var epoch: UInt64
    /// Node ids of the followers in sync with that leader, as last persisted.
    public var inSyncReplicas: [String]

    /// A state with the given epoch and in-sync set.
    ///
    /// - Parameters:
    ///   - epoch: the epoch of the newest leader (0: no leader has claimed one yet).
    ///   - inSyncReplicas: node ids of the followers in sync with that leader.
    public init(epoch: UInt64, inSyncReplicas: [String]) {
        self.epoch = epoch
        self.inSyncReplicas = inSyncReplicas
    }
}

/// Durable storage for ``CoordinatorState`` (Docs/Semantics.md, "In-sync replicas and confirms").
///
/// The leader persists every ISR change before any confirm relies on it, and claims each new
/// epoch through `claimEpoch`, so a store shared by the cluster (etcd, with a compare-and-set
/// on the epoch key) can fence an old leader. ``LocalCoordinator`` is the embedded default: a
/// file on the leader's own disk.
public protocol Coordinator: Sendable {
    /// The stored state; epoch 0 and an empty set when nothing was stored yet.
    ///
    /// - Throws: when the state cannot be read. ``LocalCoordinator`` throws ``ReplicationError``
    ///   with code ``ReplicationError/Code/coordination``; a broker's own coordinator may throw
    ///   its own error, which reaches the caller unchanged.
    func load() async throws -> CoordinatorState
    /// Takes the next epoch after `current` with an empty in-sync set, or fails when another
    /// leader has claimed a newer epoch meanwhile.
    ///
    /// A leader calls this from ``ReplicationLeader/run()`` before it serves followers, with
    /// `current` one less than its own ``ReplicationLeader/epoch``.
    ///
    /// - Parameter current: the newest epoch the caller knows of; the claimed epoch is
    ///   `current + 1`.
    /// - Returns: the stored state: epoch `current + 1` and an empty in-sync set.
    /// - Throws: when a newer epoch than `current` is stored, or the claim cannot be stored.
    ///   ``LocalCoordinator`` throws ``ReplicationError`` with code
    ///   ``ReplicationError/Code/coordination``; ``ReplicationLeader/run()`` rethrows the error.
    func claimEpoch(after current: UInt64) async throws -> CoordinatorState
    /// Stores a new in-sync set for `epoch`; fails when `epoch` is no longer the newest.
    ///
    /// Confirms rely on a new set only once this returns; when it throws, the leader keeps
    /// the previous set and tries again on a later tick.
    ///
    /// - Parameters:
    ///   - members: node ids of the followers now in sync, in any order.
    ///   - epoch: the epoch of the leader storing the set.
    /// - Throws: when `epoch` is not the stored epoch, or the set cannot be stored.
    ///   ``LocalCoordinator`` throws ``ReplicationError`` with code
    ///   ``ReplicationError/Code/coordination``.
    func storeInSyncReplicas(_ members: [String], epoch: UInt64) async throws
}

/// A ``Coordinator`` that keeps its state in one JSON file, replaced atomically (temporary
/// file, fsync, rename, directory fsync) on every change.
public final class LocalCoordinator: Coordinator {
    /// The JSON state file; its directory is created on the first write, and a missing file
    /// reads as epoch 0 with an empty in-sync set.
    public let path: String
    private let lock = NSLock()

    /// A coordinator that keeps its state in the file at `path`.
    ///
    /// Nothing is read or written until the first call.
    ///
    /// - Parameter path: the state file, e.g. `<data dir>/.brpl/coordinator.json`.
    public init(path: String) {
        self.path = path
    }

    /// Reads the state file; epoch 0 and an empty in-sync set when it does not exist yet.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when the
    ///   file exists but cannot be read or is not a valid state.
    public func load() async throws -> CoordinatorState {
        try lock.withLock { try read() }
    }

    /// Stores epoch `current + 1` with an empty in-sync set, unless the file holds an epoch
    /// newer than `current`.
    ///
    /// - Parameter current: the newest epoch the caller knows of.
    /// - Returns: the stored state: epoch `current + 1` and an empty in-sync set.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when
    ///   another leader claimed an epoch after `current`, or the file cannot be read, written,
    ///   fsynced or renamed into place (the message names the file and the errno).
    public func claimEpoch(after current: UInt64) async throws -> CoordinatorState {
        try lock.withLock {
            let stored = try read()
            guard stored.epoch <= current else {
                throw ReplicationError.coordination("epoch \(stored.epoch) was claimed by another leader after \(current)")
            }
            let next = CoordinatorState(epoch: current + 1, inSyncReplicas: [])
            try write(next)
            return next
        }
    }

    /// Stores `members`, sorted, as the in-sync set of `epoch`, if `epoch` is the stored epoch.
    ///
    /// - Parameters:
    ///   - members: node ids of the followers now in sync, in any order.
    ///   - epoch: the epoch of the leader storing the set.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when the
    ///   file holds another epoch, or it cannot be read, written, fsynced or renamed into place.
    public func storeInSyncReplicas(_ members: [String], epoch: UInt64) async throws {
        try lock.withLock {
            let stored = try read()
            guard stored.epoch == epoch else {
                throw ReplicationError.coordination("cannot store the in-sync set of epoch \(epoch): epoch \(stored.epoch) is current")
            }
            try write(CoordinatorState(epoch: epoch, inSyncReplicas: members.sorted()))
        }
    }

    private func read() throws -> CoordinatorState {
        guard FileManager.default.fileExists(atPath: path) else { return CoordinatorState(epoch: 0, inSyncReplicas: []) }
        do {
            return try JSONDecoder().decode(CoordinatorState.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ReplicationError.coordination("cannot read coordinator state \(path): \(error)")
        }
    }

    private func write(_ state: CoordinatorState) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = path + ".tmp"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let bytes: Data
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            bytes = try encoder.encode(state)
        } catch {
            throw ReplicationError.coordination("cannot write coordinator state \(path): \(error)")
        }
        guard FileManager.default.createFile(atPath: temporary, contents: bytes) else {
            throw ReplicationError.coordination("cannot write \(temporary)")
        }
        try Self.fsync(path: temporary, directory: false)
        guard rename(temporary, path) == 0 else {
            throw ReplicationError.coordination("cannot rename \(temporary) to \(path): errno \(errno)")
        }
        try Self.fsync(path: directory, directory: true)
    }

    private static func fsync(path: String, directory: Bool) throws {
        let descriptor = open(path, (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReplicationError.coordination("cannot open \(path) to fsync: errno \(errno)") }
        defer { close(descriptor) }
        guard Foundation.fsync(descriptor) == 0 else { throw ReplicationError.coordination("fsync \(path) failed: errno \(errno)") }
    }
}
