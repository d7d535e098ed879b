import Synchronization

/// Serialises the leader's local writes to one file and keeps its open handle, which the
/// ``WriterTable`` may close while no write holds or waits for the writer's lock.
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
        state.withLock { $0 = HandleState(handle: handle, size: size, sizeIsKnown: true) }
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

    /// Whether the writer holds a descriptor now.
    var hasOpenHandle: Bool { state.withLock { $0.handle != nil } }

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
/// counting the writes that hold or wait for it, so that the table never closes the handle
/// of a writer in use.
final class WriterLock: Sendable {
    private let serial = AsyncSerialLock()
    private let users = Mutex(0)

    init() {}

    /// Runs `body` holding the lock; nil when the lock was not free before `deadline`.
    /// - Throws: `CancellationError` when cancelled while waiting, or what `body` throws.
    func withLock<T>(before deadline: ContinuousClock.Instant, _ body: () async throws -> T) async throws -> T? {
        users.withLock { $0 += 1 }
        defer { users.withLock { $0 -= 1 } }
        return try await serial.withLock(before: deadline, body)
    }

    /// `body`'s result when no write holds or waits for the lock (none starts while it runs); nil otherwise.
    func ifUnused<T: Sendable>(_ body: () -> T) -> T? {
        users.withLock { $0 == 0 ? body() : nil }
    }
}
