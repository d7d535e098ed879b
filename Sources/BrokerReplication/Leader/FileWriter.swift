import Synchronization

/// Serialises the leader's local writes to one file and keeps its open handle, which the
/// ``WriterTable`` may close, and then forget the writer, while no write holds or waits for
/// the writer's lock.
final class FileWriter: Sendable {
    let path: ReplicatedPath
    let lock = WriterLock()
    private let state = Mutex(HandleState())
    /// Told each time the writer opens a descriptor, so that the table can count it.
    private let opened: (@Sendable (ReplicatedPath) -> Void)?

    private struct HandleState {
        var handle: DataFile?
        var size = 0
        /// `size` is the file's size even though `handle` is nil: the table closed the handle.
        /// The next open keeps it rather than asking the file, exactly as the open handle
        /// would have (a failed truncate may have left bytes past it).
        var sizeIsKnown = false
        /// A failed truncate may have left bytes past `size`: only this writer knows where the
        /// file really ends, so the table keeps it until a replace or delete starts the file over.
        var sizeMayDifferFromFile = false
    }

    enum Release {
        /// A write holds or waits for the lock: the handle stays.
        case inUse
        /// The handle taken out, if there was one; dropping it closes the descriptor.
        case released(DataFile?)
    }

    init(path: ReplicatedPath, opened: (@Sendable (ReplicatedPath) -> Void)? = nil) {
        self.path = path
        self.opened = opened
    }

    /// The open handle and the local size; opens (creating) the file when it has no handle.
    /// Only called by the holder of `lock`.
    func open(in directory: DataDirectory) throws(StorageError) -> (handle: DataFile, size: Int) {
        let (current, knownSize) = state.withLock { state in (state.handle.map { ($0, state.size) }, state.sizeIsKnown ? state.size : nil) }
        if let current { return current }
        let handle = try directory.openFile(path, create: true)
        // Not `??`: its autoclosure would lose the typed throw.
        let size = if let knownSize { knownSize } else { try handle.size() }
        state.withLock { state in
            state.handle = handle
            state.size = size
            state.sizeIsKnown = true
        }
        opened?(path)
        return (handle, size)
    }

    func setSize(_ size: Int) {
        state.withLock { $0.size = size }
    }

    /// A replace's new handle; or nil after a delete or a failed replace, and the next write
    /// opens the file again and asks it for its size. Only called by the holder of `lock`.
    func setHandle(_ handle: DataFile?, size: Int) {
        state.withLock { $0 = HandleState(handle: handle, size: size, sizeIsKnown: handle != nil) }
        if handle != nil { opened?(path) }
    }

    /// A write failed and so did the truncate back to `size`: see `sizeMayDifferFromFile`.
    func truncateFailed() {
        state.withLock { $0.sizeMayDifferFromFile = true }
    }

    /// Whether the writer holds a descriptor now.
    var hasOpenHandle: Bool { state.withLock { $0.handle != nil } }

    /// Whether the table may drop this writer once it is unused and holds no descriptor: a
    /// new writer for the path would then ask the file for its size and get the right one.
    var isForgettable: Bool { state.withLock { $0.handle == nil && !$0.sizeMayDifferFromFile } }

    /// Takes the handle out unless a write holds or waits for the lock; none can start until
    /// it is out. The caller drops it (closing the descriptor) outside its own locks.
    func releaseHandleIfUnused() -> Release {
        lock.ifUnused {
            state.withLock { state in
                defer { state.handle = nil }
                return state.handle
            }
        }.map(Release.released) ?? .inUse
    }
}

/// A file writer's lock: the ``AsyncSerialLock`` that keeps writes to one file in order,
/// and a count of the writes that checked the writer out of the table, so that the table
/// never closes the handle of a writer in use, nor forgets it (which would let a second
/// writer for the same path in).
final class WriterLock: Sendable {
    private let serial = AsyncSerialLock()
    private let users = Mutex(0)

    init() {}

    /// Runs `body` holding the lock; nil when the lock was not free before `deadline`. The
    /// caller has checked the writer out (``WriterTable/withWriter(for:_:)``).
    /// - Throws: `CancellationError` when cancelled while waiting, or what `body` throws.
    func withLock<T>(before deadline: ContinuousClock.Instant, _ body: () async throws -> T) async throws -> T? {
        try await serial.withLock(before: deadline, body)
    }

    /// Counts a write that will hold or wait for the lock. The table calls it under its own
    /// lock, in the same step as the lookup, so no release can slip in between.
    func checkOut() {
        users.withLock { $0 += 1 }
    }

    /// That write is done. Returns whether no other write holds or waits for the lock.
    func checkIn() -> Bool {
        users.withLock { users in
            users -= 1
            return users == 0
        }
    }

    /// `body`'s result when no write holds or waits for the lock (none starts while it runs); nil otherwise.
    func ifUnused<T: Sendable>(_ body: () -> T) -> T? {
        users.withLock { $0 == 0 ? body() : nil }
    }
}
