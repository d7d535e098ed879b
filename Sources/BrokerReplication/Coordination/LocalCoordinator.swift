import Foundation

/// A ``Coordinator`` that keeps its state in one JSON file, replaced atomically (temporary
/// file, fsync, rename, directory fsync) on every change.
///
/// Every read-modify-write holds an exclusive `flock` on a lock file next to it
/// (`<path>.lock`), so several processes sharing the file (a follower promoting itself while
/// its old leader still runs on the same host) never interleave their compare-and-sets.
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

    /// Applies `claim` to the stored state under the file lock and stores the result.
    ///
    /// - Parameter claim: the epoch to take, the node taking it, and what must hold first.
    /// - Returns: the stored state.
    /// - Throws: what ``EpochClaim/apply(to:)`` refuses, or ``ReplicationError`` with code
    ///   ``ReplicationError/Code/coordination`` when the file cannot be locked, read, written,
    ///   fsynced or renamed into place (the message names the file and the errno).
    public func claimEpoch(_ claim: EpochClaim) async throws -> CoordinatorState {
        try exclusively {
            let stored = try read()
            let next = try claim.apply(to: stored)
            if next != stored { try write(next) }
            return next
        }
    }

    /// Stores `members`, sorted, as the in-sync set of `epoch`, if `epoch` is the stored epoch.
    ///
    /// - Parameters:
    ///   - members: node ids of the followers now in sync, in any order.
    ///   - epoch: the epoch of the leader storing the set.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when the
    ///   file holds another epoch, or it cannot be locked, read, written, fsynced or renamed.
    public func storeInSyncReplicas(_ members: [String], epoch: UInt64) async throws {
        try exclusively {
            var stored = try read()
            guard stored.epoch == epoch else {
                throw ReplicationError.coordination("cannot store the in-sync set of epoch \(epoch): epoch \(stored.epoch) is current")
            }
            stored.inSyncReplicas = members.sorted()
            try write(stored)
        }
    }

    /// Runs `body` holding the in-process lock and an exclusive `flock` on `<path>.lock`.
    private func exclusively<T>(_ body: () throws -> T) throws -> T {
        try lock.withLock {
            let lockPath = path + ".lock"
            do {
                try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            } catch {
                throw ReplicationError.coordination("cannot create the directory of \(path): \(error)")
            }
            let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw ReplicationError.coordination("cannot open \(lockPath): errno \(errno)") }
            defer { close(descriptor) }
            while flock(descriptor, LOCK_EX) != 0 {
                guard errno == EINTR else { throw ReplicationError.coordination("cannot lock \(lockPath): errno \(errno)") }
            }
            return try body()
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
