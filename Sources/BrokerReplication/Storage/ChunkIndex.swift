import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CRC32C of every complete 1 MiB chunk of each data file, kept on both sides so a full
/// sync compares files chunk by chunk without reading what did not change.
///
/// An entry is trusted only while the file is still the one it describes, grown at most:
/// ``trustedChunks(_:current:)`` compares the identity recorded with the entry (device,
/// inode, size, modification time) with the file's now. Appends keep the inode and grow the
/// size, so the chunks already indexed still hold and only the new tail is read; a replace
/// is a rename and brings a new inode; a file that shrank, or was written in place without
/// growing, is read again. CRC32C values are cheap to extend, so the checksum of any prefix
/// costs at most one chunk's read.
///
/// The index lives in memory and in `.brpl/chunk-index` (``ChunkIndexFile``), so a restart
/// does not read every file again.
final class ChunkIndex: Sendable {
    /// Bytes of one checksummed chunk; fixed by the protocol (Docs/Protocol.md, "sync-manifest").
    static let chunkBytes = 1 << 20

    /// What identifies one incarnation of a file, from `fstat`.
    struct Identity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var modifiedNanoseconds: Int64

        init(device: UInt64, inode: UInt64, size: Int, modifiedNanoseconds: Int64) {
            self.device = device
            self.inode = inode
            self.size = size
            self.modifiedNanoseconds = modifiedNanoseconds
        }

        init(of file: DataFile) throws(StorageError) {
            var info = stat()
            guard fstat(file.descriptor, &info) == 0 else { throw StorageError(operation: "stat \(file.path)", errno: errno) }
            #if canImport(Darwin)
            let modified = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
            #else
            let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            #endif
            self.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int(info.st_size), modifiedNanoseconds: modified)
        }
    }

    /// One file's complete chunks, as of `identity`.
    struct Entry: Hashable, Sendable {
        var identity: Identity
        var chunks: [UInt32]
    }

    private let entries: Mutex<[ReplicatedPath: Entry]>

    init(entries: [ReplicatedPath: Entry] = [:]) {
        self.entries = Mutex(entries)
    }

    /// How many of `entry`'s chunks still describe the file, which now has `current`.
    ///
    /// All of them when it is the same file and either grew or kept its size and modification
    /// time; none when it is another file (inode or device), shrank below what was indexed,
    /// or changed in place (same size, new modification time).
    static func trustedChunks(_ entry: Entry, current: Identity) -> Int {
        let indexed = entry.identity
        guard indexed.device == current.device, indexed.inode == current.inode else { return 0 }
        guard current.size >= indexed.size, current.size >= entry.chunks.count * chunkBytes else { return 0 }
        if current.size == indexed.size, current.modifiedNanoseconds != indexed.modifiedNanoseconds { return 0 }
        return entry.chunks.count
    }

    /// A reader of one file's chunk checksums: from the index where it holds, read otherwise.
    func reader(for path: ReplicatedPath, file: DataFile) throws(StorageError) -> ChunkReader {
        let identity = try Identity(of: file)
        let entry = entries.withLock { $0[path] }
        let trusted = entry.map { Self.trustedChunks($0, current: identity) } ?? 0
        return ChunkReader(path: path, file: file, identity: identity, known: Array(entry?.chunks.prefix(trusted) ?? []))
    }

    /// Keeps what `reader` knows (the chunks it was given and those it read) for its file.
    func record(_ reader: ChunkReader) {
        let entry = Entry(identity: reader.identity, chunks: reader.known)
        entries.withLock { $0[reader.path] = entry }
    }

    /// Records `chunks` as the complete chunks of the file at `path`, which `file` has open.
    func record(_ chunks: ArraySlice<UInt32>, for path: ReplicatedPath, file: DataFile) throws(StorageError) {
        let entry = Entry(identity: try Identity(of: file), chunks: Array(chunks))
        entries.withLock { $0[path] = entry }
    }

    func forget(_ path: ReplicatedPath) {
        _ = entries.withLock { $0.removeValue(forKey: path) }
    }

    /// Drops the entries of files that are not in `paths`.
    func keepOnly(_ paths: Set<ReplicatedPath>) {
        entries.withLock { entries in entries = entries.filter { paths.contains($0.key) } }
    }

    var snapshot: [ReplicatedPath: Entry] {
        entries.withLock { $0 }
    }
}

/// One file's chunk checksums for a sync: the index's where they hold, computed from the file
/// for the rest, one chunk at a time and only as far as the caller asks.
struct ChunkReader {
    let path: ReplicatedPath
    let file: DataFile
    let identity: ChunkIndex.Identity
    /// Checksums of the complete chunks from 0 on: the trusted ones, then the ones read.
    private(set) var known: [UInt32]
    /// Bytes read from the file so far.
    private(set) var bytesRead = 0

    init(path: ReplicatedPath, file: DataFile, identity: ChunkIndex.Identity, known: [UInt32]) {
        self.path = path
        self.file = file
        self.identity = identity
        self.known = known
    }

    /// The CRC32C of the first `length` bytes of chunk `index` (a whole chunk, or the start of one).
    mutating func checksum(ofChunk index: Int, length: Int) throws(StorageError) -> UInt32 {
        precondition(length > 0 && length <= ChunkIndex.chunkBytes)
        if length == ChunkIndex.chunkBytes, index < known.count { return known[index] }
        let start = index * ChunkIndex.chunkBytes
        let checksum = try file.checksum(from: start, length: length)
        bytesRead += length
        if length == ChunkIndex.chunkBytes, index == known.count { known.append(checksum) }
        return checksum
    }

    /// Keeps only the first `count` chunks (the rest are about to be overwritten).
    mutating func truncate(toChunks count: Int) {
        if known.count > count { known.removeLast(known.count - count) }
    }
}
