/// Whether a full sync can take a consistent cut with the files it opened beforehand.
///
/// Appends only grow files, so a handle opened earlier shows every byte up to the size the
/// leader knows at the cut; a replace or delete bumps the file's generation, so a handle
/// opened before one is caught and reopened.
///
/// A sync opens at most `fullSyncOpenFiles` files before its cut; it opens the others when
/// it reaches them, and checks then that their generation is still the cut's.
enum FullSyncCut: Equatable {
    /// Every file the sync opened is at its current generation: cut now.
    case consistent
    /// Open these paths again (replaced or deleted since they were opened) and try again.
    case reopen([ReplicatedPath])
    /// A replace or delete is under way; try again shortly.
    case busy

    /// Decides from what the leader knows of each file and the generations the sync opened.
    static func decide(files: [ReplicatedPath: Sequencer.FileState], opened: [ReplicatedPath: UInt64]) -> FullSyncCut {
        if files.values.contains(where: \.isChanging) { return .busy }
        let stale = opened.compactMap { path, generation in files[path]?.generation == generation ? nil : path }
        return stale.isEmpty ? .consistent : .reopen(stale.sorted { $0.string < $1.string })
    }
}
