import Synchronization

/// Each file's writer, by path, and a bound on the descriptors they keep open.
///
/// A broker writes many files over its uptime (segments roll over). The table counts the
/// writers that opened a descriptor; when one more would exceed `maximumOpenFiles`, it closes
/// the least recently used ones that no write holds or waits for, down to seven eighths of
/// the bound, so that the next openings do not each pay for a search. A closed writer opens
/// its file again on its next write.
///
/// It also forgets every writer that holds no descriptor and that no write uses, so that its
/// memory follows the files open now, not every file ever written. The one exception is a
/// writer whose failed truncate may have left bytes past its size: it alone knows where the
/// file ends, so it stays until a replace or delete starts the file over.
///
/// A lock of its own: every append looks its writer up, and doing that under the leader's
/// state lock doubled the producers' contention on it.
final class WriterTable: Sendable {
    let maximumOpenFiles: Int
    private let state = Mutex(State())

    private struct Entry {
        let writer: FileWriter
        /// When the writer was last looked up, on the table's own clock.
        var lastUsed: UInt64
    }

    private struct State {
        var entries: [ReplicatedPath: Entry] = [:]
        /// Writers that opened a descriptor since the table last closed theirs.
        var open: Set<ReplicatedPath> = []
        var clock: UInt64 = 0
    }

    init(maximumOpenFiles: Int) {
        precondition(maximumOpenFiles >= 1, "at least one file may be open")
        self.maximumOpenFiles = maximumOpenFiles
    }

    /// Runs `body` with the writer that serialises local writes to `path`.
    ///
    /// The writer counts as in use from the lookup until `body` returns, so the table neither
    /// closes its handle nor forgets it meanwhile: forgetting it would let a second writer for
    /// the same path in.
    func withWriter<T>(for path: ReplicatedPath, _ body: (FileWriter) async throws -> T) async rethrows -> T {
        let writer = checkOut(path)
        defer { checkIn(writer) }
        return try await body(writer)
    }

    /// Writers the table keeps: those holding a descriptor, in use, or whose size only they know.
    var count: Int { state.withLock { $0.entries.count } }

    /// Writers counted as holding a descriptor (at most `maximumOpenFiles`, plus writes in progress).
    var openFileCount: Int { state.withLock { $0.open.count } }

    private func checkOut(_ path: ReplicatedPath) -> FileWriter {
        state.withLock { state in
            state.clock += 1
            let writer: FileWriter
            if let index = state.entries.index(forKey: path) {
                state.entries.values[index].lastUsed = state.clock
                writer = state.entries.values[index].writer
            } else {
                writer = FileWriter(path: path) { [weak self] path in self?.opened(path) }
                state.entries[path] = Entry(writer: writer, lastUsed: state.clock)
            }
            writer.lock.checkOut()
            return writer
        }
    }

    /// A write is done with `writer`: forget it if it was the last one and left no descriptor
    /// (a delete, a failed replace, or a write that opened nothing).
    private func checkIn(_ writer: FileWriter) {
        state.withLock { state in
            // Under the table's lock no lookup can check the writer out again meanwhile.
            guard writer.lock.checkIn(), writer.isForgettable, state.entries[writer.path]?.writer === writer else { return }
            state.entries[writer.path] = nil
            state.open.remove(writer.path)
        }
    }

    /// A writer opened a descriptor: count it, and close others when it is one too many.
    private func opened(_ path: ReplicatedPath) {
        let released = state.withLock { state -> [DataFile] in
            state.open.insert(path)
            guard state.open.count > maximumOpenFiles else { return [] }
            return Self.releaseLeastRecentlyUsed(&state, downTo: maximumOpenFiles - maximumOpenFiles / 8)
        }
        // The descriptors close here, as the last references go: after the lock, not under it.
        _ = released
    }

    /// Takes the handles of the least recently used writers no write is using, until at most
    /// `target` are counted open, and forgets those writers. Writers in use stay open, so the
    /// count may stay above it.
    private static func releaseLeastRecentlyUsed(_ state: inout State, downTo target: Int) -> [DataFile] {
        let oldestFirst = state.open.map { (path: $0, lastUsed: state.entries[$0]?.lastUsed ?? 0) }.sorted { $0.lastUsed < $1.lastUsed }
        var handles: [DataFile] = []
        for (path, _) in oldestFirst {
            guard state.open.count > target else { break }
            guard let writer = state.entries[path]?.writer else {
                state.open.remove(path)
                continue
            }
            if case .released(let handle) = writer.releaseHandleIfUnused() {
                state.open.remove(path)
                if let handle { handles.append(handle) }
                // Unused, and no lookup can check it out while the table's lock is held.
                if writer.isForgettable { state.entries[path] = nil }
            }
        }
        return handles
    }
}
