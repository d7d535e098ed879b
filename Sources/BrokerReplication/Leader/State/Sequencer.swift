import LZ4
import NIOCore

/// Gives every change its LSN, collects changes into the open batch, seals batches into the
/// backlog, and knows each file's size and generation as of the last LSN.
///
/// A value type with no clock and no lock: ``LeaderStateMachine`` drives it and passes the
/// time in. Knowing every file's size at every LSN is what lets a full sync cut consistently
/// (see ``FullSyncCut``).
struct Sequencer {
    /// What the leader knows of one file as of the last assigned LSN.
    struct FileState: Sendable, Equatable {
        var size: Int
        /// Changes on every replace and delete, so a full sync can tell whether the handle it
        /// opened still shows the file as of its cut.
        var generation: UInt64
        /// A replace or delete is under way: a full sync must not cut now.
        var isChanging = false
    }

    /// What a committed record did to its file.
    enum FileChange: Sendable {
        case grew(toSize: Int)
        case replaced(size: Int)
        case deleted
        /// Part of a replace or delete that is not finished: the file itself is unchanged.
        case none
    }

    let batchBytes: Int
    private(set) var nextLSN: UInt64 = 1
    private var builder = BatchBuilder()
    private let compressor = LZ4BlockCompressor()
    private(set) var backlog: Backlog
    private(set) var files: [ReplicatedPath: FileState] = [:]
    private var nextGeneration: UInt64 = 1

    init(batchBytes: Int, backlogBytes: Int, files existing: [(path: ReplicatedPath, size: Int)]) {
        self.batchBytes = batchBytes
        self.backlog = Backlog(maximumBytes: backlogBytes)
        for file in existing {
            files[file.path] = FileState(size: file.size, generation: nextGeneration)
            nextGeneration += 1
        }
    }

    /// The last LSN assigned so far (0 before the first).
    var lastAssignedLSN: UInt64 { nextLSN - 1 }

    /// The LSN the next sealed batch will start with.
    var nextSealedLSN: UInt64 { builder.isEmpty ? nextLSN : builder.firstLSN }

    /// True once the open batch holds `batchBytes`: the caller seals it.
    var isBatchFull: Bool { builder.payloadBytes >= batchBytes }

    /// Whether the open batch holds `lsn` (a confirm waiting on it seals it early).
    func openBatchHolds(_ lsn: UInt64) -> Bool {
        !builder.isEmpty && lsn >= builder.firstLSN
    }

    /// The file's size as the leader last replicated it (0 when it does not exist).
    func size(of path: ReplicatedPath) -> Int {
        files[path]?.size ?? 0
    }

    /// Gives `record` the next LSN, adds it to the open batch and records what it did to its file.
    mutating func assign(_ record: ReplicationRecord, change: FileChange) -> UInt64 {
        let lsn = nextLSN
        nextLSN += 1
        builder.append(record, lsn: lsn)
        switch change {
        case .grew(let size):
            setSize(size, of: record.path)
        case .replaced(let size):
            files[record.path] = FileState(size: size, generation: takeGeneration())
        case .deleted:
            files[record.path] = nil
        case .none:
            break
        }
        return lsn
    }

    /// Gives an append of `bytes` at `offset` the next LSN without recording the file's size:
    /// a range of appends records it once, at its end (``setSize(_:of:)``).
    mutating func assignAppend(of bytes: ByteBuffer, to path: ReplicatedPath, at offset: Int) -> UInt64 {
        let lsn = nextLSN
        nextLSN += 1
        builder.append(.append(path: path, offset: UInt64(offset), bytes: bytes), lsn: lsn)
        return lsn
    }

    mutating func setSize(_ size: Int, of path: ReplicatedPath) {
        // Not `files[path, default: ...]`: its autoclosure cost two allocations per record.
        if files[path] != nil {
            files[path]!.size = size
        } else {
            files[path] = FileState(size: size, generation: takeGeneration())
        }
    }

    /// Seals the open batch, if any: compressed once, kept in the backlog, stamped `now`.
    mutating func seal(at now: ContinuousClock.Instant) -> SealedBatch? {
        guard !builder.isEmpty else { return nil }
        var sealed = builder.seal(using: compressor)
        sealed.sealedAt = now
        backlog.append(sealed)
        return sealed
    }

    /// Marks a replace or delete of `path` as under way.
    /// - Returns: what the leader knew of the file before, for ``abandonChanging(_:restoring:)``.
    mutating func beginChanging(_ path: ReplicatedPath) -> FileState? {
        let previous = files[path]
        var file = previous ?? FileState(size: 0, generation: 0)
        file.isChanging = true
        file.generation = takeGeneration()
        files[path] = file
        return previous
    }

    /// A replace or delete failed before it changed the local file: the leader knows it as before.
    mutating func abandonChanging(_ path: ReplicatedPath, restoring previous: FileState?) {
        files[path] = previous
    }

    private mutating func takeGeneration() -> UInt64 {
        defer { nextGeneration += 1 }
        return nextGeneration
    }
}
