import CFileSystemSync

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file descriptor, closed when the last reference goes away.
///
/// Shared between a writer and a full sync that reads a consistent cut: after a replace or
/// delete, a sync still holding the old handle keeps reading the old contents.
final class DataFile: Sendable {
    let descriptor: Int32
    let path: String

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        close(descriptor)
    }

    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        var written = 0
        while written < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw StorageError(operation: "write \(bytes.count) bytes to \(path) at offset \(offset)", errno: errno)
            }
            written += result
        }
    }

    /// Writes `buffers` one after another, starting at `offset`, with one `pwritev` when the
    /// kernel takes them all at once (more calls only after a short write, or for more than
    /// `maximumVectorsPerWrite` buffers).
    func write(_ buffers: [UnsafeRawBufferPointer], at offset: Int) throws(StorageError) {
        let totalBytes = buffers.reduce(0) { $0 + $1.count }
        var vectors = buffers.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var first = 0
        var written = 0
        while written < totalBytes {
            // Empty buffers carry no bytes (and may have no address): never hand them over first.
            while vectors[first].iov_len == 0 { first += 1 }
            let count = Int32(min(vectors.count - first, Self.maximumVectorsPerWrite))
            let result = vectors.withUnsafeBufferPointer { pwritev(descriptor, $0.baseAddress! + first, count, off_t(offset + written)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw StorageError(operation: "write \(totalBytes) bytes in \(buffers.count) buffers to \(path) at offset \(offset)", errno: errno)
            }
            written += result
            // Drop what the kernel took from the front; a short write leaves a partial buffer.
            var taken = result
            while taken > 0 {
                if vectors[first].iov_len <= taken {
                    taken -= vectors[first].iov_len
                    vectors[first].iov_len = 0
                    first += 1
                } else {
                    vectors[first].iov_base += taken
                    vectors[first].iov_len -= taken
                    taken = 0
                }
            }
        }
    }

    /// IOV_MAX on Linux and macOS: `pwritev` refuses more buffers than this in one call.
    private static let maximumVectorsPerWrite = 1024

    /// Reads up to `count` bytes at `offset` into `buffer`; returns how many were read.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(StorageError) -> Int {
        var total = 0
        while total < buffer.count {
            let result = pread(descriptor, buffer.baseAddress! + total, buffer.count - total, off_t(offset + total))
            if result < 0 {
                if errno == EINTR { continue }
                throw StorageError(operation: "read \(path) at offset \(offset)", errno: errno)
            }
            if result == 0 { break }
            total += result
        }
        return total
    }

    func truncate(to size: Int) throws(StorageError) {
        if ftruncate(descriptor, off_t(size)) != 0 { throw StorageError(operation: "truncate \(path) to \(size) bytes", errno: errno) }
    }

    /// Starts writing `length` bytes from `offset` back to the disk without waiting: a later
    /// `sync()` or a `syncfs` then finds little left to flush.
    func startWriteback(from offset: Int, length: Int) throws(StorageError) {
        if brpl_start_writeback(descriptor, Int64(offset), Int64(length)) != 0 {
            throw StorageError(operation: "start writeback of \(path)", errno: errno)
        }
    }

    func sync() throws(StorageError) {
        if fsync(descriptor) != 0 { throw StorageError(operation: "fsync \(path)", errno: errno) }
    }

    func size() throws(StorageError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw StorageError(operation: "stat \(path)", errno: errno) }
        return Int(info.st_size)
    }

    /// The CRC32C of `length` bytes from `start`, read in 1 MiB pieces.
    /// - Parameter progress: called with the bytes read so far after every block of 1 MiB.
    func checksum(from start: Int = 0, length: Int, progress: (Int) -> Void = { _ in }) throws(StorageError) -> UInt32 {
        var running = CRC32C.start
        var done = 0
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: min(1 << 20, max(length, 1)), alignment: 16)
        defer { chunk.deallocate() }
        while done < length {
            let wanted = min(chunk.count, length - done)
            let read = try self.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk.prefix(wanted)), at: start + done)
            if read == 0 { throw StorageError(operation: "read \(path): file shorter than \(start + length) bytes", errno: EIO) }
            running = CRC32C.update(running, with: UnsafeRawBufferPointer(rebasing: chunk.prefix(read)))
            done += read
            progress(done)
        }
        return CRC32C.finish(running)
    }
}
