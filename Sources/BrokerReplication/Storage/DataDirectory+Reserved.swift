#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension DataDirectory {
    /// Removes `.brpl/<name>` and the files in it; a missing directory is fine.
    ///
    /// Opened component by component with `O_NOFOLLOW`, like every other path, so a symlink
    /// planted there is refused rather than followed.
    func removeReservedDirectory(_ name: String) throws(StorageError) {
        let operation = "remove \(Self.reservedDirectory)/\(name)"
        let root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw StorageError(operation: operation, errno: errno) }
        defer { close(root) }
        let reserved = openat(root, Self.reservedDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if reserved < 0 && errno == ENOENT { return }
        guard reserved >= 0 else { throw StorageError(operation: operation, errno: errno) }
        defer { close(reserved) }
        let target = openat(reserved, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if target < 0 && errno == ENOENT { return }
        guard target >= 0 else { throw StorageError(operation: operation, errno: errno) }
        guard let listing = fdopendir(target) else {
            let error = errno
            close(target)
            throw StorageError(operation: operation, errno: error)
        }
        defer { closedir(listing) }
        // Collect first: removing entries while reading the directory may skip some. Names
        // stay raw bytes (NUL-terminated), whatever their encoding.
        var names: [[CChar]] = []
        while let entry = readdir(listing) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } + [0]
            }
            if entryName != [46, 0] && entryName != [46, 46, 0] { names.append(entryName) }
        }
        for entryName in names where unlinkat(dirfd(listing), entryName, 0) != 0 && errno != ENOENT {
            let shown = String(decoding: entryName.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw StorageError(operation: operation + ": remove \(shown)", errno: errno)
        }
        if unlinkat(reserved, name, AT_REMOVEDIR) != 0 && errno != ENOENT {
            throw StorageError(operation: operation, errno: errno)
        }
    }
}
