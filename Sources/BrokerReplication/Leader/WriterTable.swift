import Synchronization

/// Each file's writer, by path, and a bound on the descriptors they keep open.
///
/// A broker writes many files over its uptime (segments roll over), and a writer used to keep
/// its handle open for good. The table counts the writers that opened a descriptor; when one
/// more would exceed `maximumOpenFiles`, it closes the least recently used ones that no write
/// holds or waits for, down to seven eighths of the bound, so that the next openings do not
/// each pay for a search. A closed writer opens its file again on its next write.
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

    /// The writer that serialises local writes to `path`.
    func writer(for path: ReplicatedPath) -> FileWriter {
        state.withLock { state in
            state.clock += 1
            if let index = state.entries.index(forKey: path) {
                state.entries.values[index].lastUsed = state.clock
                return state.entries.values[index].writer
            }
            let writer = FileWriter(path: path) { [weak self] path in self?.opened(path) }
            state.entries[path] = Entry(writer: writer, lastUsed: state.clock)
            return writer
        }
    }

    /// Writers counted as holding a descriptor (at most `maximumOpenFiles`, plus writes in progress).
    var openFileCount: Int { state.withLock { $0.open.count } }

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
    /// `target` are counted open. Writers in use stay open, so the count may stay above it.
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
            }
        }
        return handles
    }
}
