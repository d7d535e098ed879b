/// The last leader epoch this data directory served, in `.brpl/leader-epoch` (8 bytes,
/// big-endian), so that every leader started on it takes a newer epoch than the one before.
struct LeaderEpochFile {
    static let rawPath = DataDirectory.reservedDirectory + "/leader-epoch"

    private let handle: DataFile

    init(directory: DataDirectory) throws(StorageError) {
        handle = try directory.openFile(rawPath: Self.rawPath, create: true, truncate: false)
    }

    /// The stored epoch; 0 for a directory no leader has run on.
    func load() throws(StorageError) -> UInt64 {
        var stored: UInt64 = 0
        _ = try withUnsafeMutableBytes(of: &stored) { buffer throws(StorageError) in try handle.read(into: buffer, at: 0) }
        return UInt64(bigEndian: stored)
    }

    /// Stores `epoch` durably.
    func store(_ epoch: UInt64) throws(StorageError) {
        try withUnsafeBytes(of: epoch.bigEndian) { buffer throws(StorageError) in try handle.write(buffer, at: 0) }
        try handle.sync()
    }
}
