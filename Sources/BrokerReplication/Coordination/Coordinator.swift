import Foundation

/// What a cluster must remember across leader changes: the leader epoch and the in-sync set.
public struct CoordinatorState: Codable, Sendable, Equatable {
    /// The epoch of the newest leader.
    public var epoch: UInt64
    /// Node ids of the followers in sync with that leader, as last persisted.
    public var inSyncReplicas: [String]

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
    func load() async throws -> CoordinatorState
    /// Takes the next epoch after `current` with an empty in-sync set, or fails when another
    /// leader has claimed a newer epoch meanwhile.
    func claimEpoch(after current: UInt64) async throws -> CoordinatorState
    /// Stores a new in-sync set for `epoch`; fails when `epoch` is no longer the newest.
    func storeInSyncReplicas(_ members: [String], epoch: UInt64) async throws
}

/// A ``Coordinator`` that keeps its state in one JSON file, replaced atomically (temporary
/// file, fsync, rename, directory fsync) on every change.
public final class LocalCoordinator: Coordinator {
    public let path: String
    private let lock = NSLock()

    /// - Parameter path: the state file, e.g. `<data dir>/.brpl/coordinator.json`.
    public init(path: String) {
        self.path = path
    }

    public func load() async throws -> CoordinatorState {
        try lock.withLock { try read() }
    }

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
