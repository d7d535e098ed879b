#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a follower's data stands, persisted in `.brpl/follower-state`.
struct FollowerPosition: Hashable, Sendable {
    /// The leader epoch the data belongs to.
    var epoch: UInt64
    /// Every record up to and including this LSN is applied and durable.
    var lastDurableLSN: UInt64

    init(epoch: UInt64, lastDurableLSN: UInt64) {
        self.epoch = epoch
        self.lastDurableLSN = lastDurableLSN
    }

    /// No usable data: forces a full sync (epoch 0, LSN 0).
    static let none = FollowerPosition(epoch: 0, lastDurableLSN: 0)
}

/// The follower's position on disk: one fixed 24-byte record, overwritten in place.
///
/// Layout, big-endian like the wire format: epoch (8 bytes), last durable LSN (8 bytes),
/// CRC32C of those 16 bytes (4 bytes), 4 zero bytes. The record is written with a single
/// `pwrite` at offset 0 and fits in one sector; a torn or otherwise damaged record fails its
/// checksum and reads as ``FollowerPosition/none``, which costs a full sync and never a
/// wrong resume.
final class FollowerStateFile: Sendable {
    /// The file's path below the data directory.
    static let rawPath = DataDirectory.reservedDirectory + "/follower-state"
    /// Bytes of one stored record.
    static let recordBytes = 24

    private let handle: DataFile

    /// Opens or creates `.brpl/follower-state` in the directory.
    ///
    /// A newly created file has its directory entries made durable at once, so a later
    /// durable ``store(_:durable:)`` cannot be lost with the file's name.
    init(directory: DataDirectory) throws(StorageError) {
        handle = try directory.openFile(rawPath: Self.rawPath, create: true, truncate: false)
        if try handle.size() == 0 {
            try directory.syncDirectory(containing: ReplicatedPath(alreadyValidated: Self.rawPath))
            try directory.syncDirectory(containing: ReplicatedPath(alreadyValidated: DataDirectory.reservedDirectory))
        }
    }

    /// The stored position, or `.none` when the file is new, short, unreadable, or its
    /// CRC32C does not match.
    func load() -> FollowerPosition {
        var record = [UInt8](repeating: 0, count: Self.recordBytes)
        let read = record.withUnsafeMutableBytes { buffer in (try? handle.read(into: buffer, at: 0)) ?? 0 }
        guard read == Self.recordBytes else { return .none }
        return record.withUnsafeBytes { bytes in
            let stored = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes.prefix(16))) == stored else { return .none }
            return FollowerPosition(
                epoch: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                lastDurableLSN: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            )
        }
    }

    /// Overwrites the position in place with one 24-byte `pwrite` at offset 0, then makes it
    /// durable (`fdatasync` on Linux, `fsync` elsewhere) when asked.
    func store(_ position: FollowerPosition, durable: Bool) throws(StorageError) {
        var record = [UInt8](repeating: 0, count: Self.recordBytes)
        record.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: position.epoch.bigEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: position.lastDurableLSN.bigEndian, toByteOffset: 8, as: UInt64.self)
            let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes.prefix(16)))
            bytes.storeBytes(of: checksum.bigEndian, toByteOffset: 16, as: UInt32.self)
        }
        let written = record.withUnsafeBytes { bytes in
            Result { () throws(StorageError) in try handle.write(bytes, at: 0) }
        }
        try written.get()
        guard durable else { return }
        #if os(Linux)
        let synced = fdatasync(handle.descriptor)
        #else
        let synced = fsync(handle.descriptor)
        #endif
        if synced != 0 { throw StorageError(operation: "fsync \(Self.rawPath)", errno: errno) }
    }
}
