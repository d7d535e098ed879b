import Synchronization

/// The files of one full sync's cut, and the few descriptors the sync holds to them.
///
/// A sync used to open every file before its cut and hold them all until it ended: a
/// directory of 100,000 files needed 100,000 descriptors at once. Now the files opened before
/// the cut are at most `fullSyncOpenFiles` (the first ones in manifest order); every other
/// file is opened when the sync reaches it and checked against the leader's generations
/// then. Appends only grow a file, so a handle opened while the generation is still the
/// cut's shows every byte up to the size at the cut; a file replaced or deleted since no
/// longer holds its content at the cut, and the sync ends with ``FileChangedAfterCut``.
///
/// Used from the thread pool, one call at a time, hence the lock.
final class FullSyncFiles: Sendable {
    /// Every file of the cut, sorted by path: the manifest's order.
    let files: [LeaderCore.Machine.FileAtCut]
    private let directory: DataDirectory
    private let core: LeaderCore
    private let handles: Mutex<Handles>

    private struct Handles {
        /// Handles opened before the cut, by file index; dropped once the sync is done with them.
        var beforeCut: [Int: DataFile]
        /// The files opened after the cut that the sync is reading now: the file being sent
        /// and the next one, which is read ahead.
        var recent: [(index: Int, handle: DataFile)] = []
    }

    /// A file the sync opened after its cut was replaced or deleted since the cut: the content
    /// the manifest describes is gone. The follower syncs again.
    struct FileChangedAfterCut: Error, CustomStringConvertible {
        let description: String
    }

    init(files: [LeaderCore.Machine.FileAtCut], openedBeforeCut: [ReplicatedPath: DataFile], directory: DataDirectory, core: LeaderCore) {
        self.files = files
        self.directory = directory
        self.core = core
        var beforeCut: [Int: DataFile] = [:]
        for (index, file) in files.enumerated() {
            if let handle = openedBeforeCut[file.path] { beforeCut[index] = handle }
        }
        self.handles = Mutex(Handles(beforeCut: beforeCut))
    }

    /// Descriptors the sync holds now.
    var openCount: Int { handles.withLock { $0.beforeCut.count + $0.recent.count } }

    /// File `index` as of the cut: the handle opened before the cut, or one opened now.
    /// Blocking I/O: call it on the thread pool.
    /// - Throws: ``FileChangedAfterCut``, or a `StorageError` when the file cannot be opened.
    func handle(_ index: Int) throws -> DataFile {
        let known = handles.withLock { handles in
            handles.beforeCut[index] ?? handles.recent.first { $0.index == index }?.handle
        }
        if let known { return known }
        let file = files[index]
        // Opened first, checked second: a replace or delete that got in between shows in the check.
        let handle = try directory.openForReading(file.path)
        guard let handle, core.isUnchanged(file.path, generation: file.generation) else {
            throw FileChangedAfterCut(description: "\(file.path) was replaced or deleted after the full sync's cut, before the sync reached it; the follower syncs again and keeps what it received")
        }
        let dropped = handles.withLock { handles in
            handles.recent.append((index, handle))
            return handles.recent.count > 2 ? handles.recent.removeFirst() : nil
        }
        // Closed here, after the lock, as the last reference goes.
        _ = dropped
        return handle
    }

    /// The sync is done with file `index`: a handle opened before the cut closes.
    func done(with index: Int) {
        let dropped = handles.withLock { $0.beforeCut.removeValue(forKey: index) }
        _ = dropped
    }

    /// Closes every handle opened before the cut except those of `kept` (the requested files).
    func keepOnly(_ kept: Set<Int>) {
        let dropped = handles.withLock { handles in
            let dropped = handles.beforeCut.filter { !kept.contains($0.key) }
            handles.beforeCut = handles.beforeCut.filter { kept.contains($0.key) }
            return dropped
        }
        _ = dropped
    }
}
