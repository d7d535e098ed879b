import CFileSystemSync

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The module's view of one data directory: every path is resolved component by component
/// with `openat` and `O_NOFOLLOW`, so a symlink anywhere in a path, placed there by
/// accident or by an attacker, is refused instead of followed out of the directory.
///
/// The top-level `.brpl` directory holds the module's own state and temporary files and is
/// never replicated (``ReplicatedPath`` refuses it).
@_spi(Benchmarks) public final class DataDirectory: Sendable {
    let path: String
    private let rootDescriptor: Int32
    /// Failures tests inject into ``syncFileSystem()``.
    let injectedFaults = InjectedFaults()

    /// Opens (and creates, when missing) the data directory.
    @_spi(Benchmarks) public init(path: String) throws(StorageError) {
        self.path = path
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw StorageError(operation: "create data directory \(path)", errno: errno)
        }
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StorageError(operation: "open data directory \(path)", errno: errno) }
        self.rootDescriptor = descriptor
    }

    deinit {
        close(rootDescriptor)
    }

    /// The reserved directory for the module's own files.
    static let reservedDirectory = ".brpl"

    // MARK: Opening

    /// Opens the directory that holds `components.dropLast()`, creating missing ones when asked.
    /// The caller closes the returned descriptor.
    private func openParent(of components: [Substring], create: Bool, for operation: String) throws(StorageError) -> Int32 {
        var current = dup(rootDescriptor)
        guard current >= 0 else { throw StorageError(operation: operation, errno: errno) }
        for component in components.dropLast() {
            let name = String(component)
            var next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(current, name, 0o755) != 0 && errno != EEXIST {
                    let error = errno
                    close(current)
                    throw StorageError(operation: operation, errno: error)
                }
                next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let error = errno
            close(current)
            guard next >= 0 else {
                // ELOOP and ENOTDIR are what O_NOFOLLOW|O_DIRECTORY give for a symlink.
                throw StorageError(operation: operation + (error == ELOOP || error == ENOTDIR ? " (a path component is a symlink or not a directory)" : ""), errno: error)
            }
            current = next
        }
        return current
    }

    private func components(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false)
    }

    /// Opens a file for reading and writing; creates it (and its directories) when asked.
    func openFile(_ path: ReplicatedPath, create: Bool) throws(StorageError) -> DataFile {
        try openFile(rawPath: path.string, create: create, truncate: false)
    }

    /// Opens a file by a path the module built itself (under `.brpl`).
    func openFile(rawPath: String, create: Bool, truncate: Bool) throws(StorageError) -> DataFile {
        let parts = components(rawPath)
        let operation = "open \(rawPath)"
        let parent = try openParent(of: parts, create: create, for: operation)
        defer { close(parent) }
        var flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC
        if create { flags |= O_CREAT }
        if truncate { flags |= O_TRUNC }
        let descriptor = openat(parent, String(parts.last!), flags, 0o644)
        guard descriptor >= 0 else {
            let error = errno
            throw StorageError(operation: operation + (error == ELOOP ? " (it is a symlink)" : ""), errno: error)
        }
        return DataFile(descriptor: descriptor, path: rawPath)
    }

    /// Opens a file for reading only, or returns nil when it does not exist.
    func openForReading(_ path: ReplicatedPath) throws(StorageError) -> DataFile? {
        let parts = components(path.string)
        let operation = "open \(path) for reading"
        let parent: Int32
        do {
            parent = try openParent(of: parts, create: false, for: operation)
        } catch where error.errno == ENOENT {
            return nil
        }
        defer { close(parent) }
        let descriptor = openat(parent, String(parts.last!), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 && errno == ENOENT { return nil }
        guard descriptor >= 0 else { throw StorageError(operation: operation, errno: errno) }
        return DataFile(descriptor: descriptor, path: path.string)
    }

    // MARK: Changing the tree

    /// Renames a file the module built (under `.brpl`) over `path`, then makes the rename durable.
    func rename(rawPath source: String, over path: ReplicatedPath, durable: Bool) throws(StorageError) {
        let sourceParts = components(source)
        let targetParts = components(path.string)
        let operation = "rename \(source) over \(path)"
        let sourceParent = try openParent(of: sourceParts, create: false, for: operation)
        defer { close(sourceParent) }
        let targetParent = try openParent(of: targetParts, create: true, for: operation)
        defer { close(targetParent) }
        guard renameat(sourceParent, String(sourceParts.last!), targetParent, String(targetParts.last!)) == 0 else {
            throw StorageError(operation: operation, errno: errno)
        }
        if durable, fsync(targetParent) != 0 { throw StorageError(operation: "fsync the directory of \(path)", errno: errno) }
    }

    /// Deletes a file (a missing one is fine) and then any directories the delete left empty.
    func delete(_ path: ReplicatedPath, durable: Bool) throws(StorageError) {
        var parts = components(path.string)
        let operation = "delete \(path)"
        let parent: Int32
        do {
            parent = try openParent(of: parts, create: false, for: operation)
        } catch where error.errno == ENOENT {
            return
        }
        let removed = unlinkat(parent, String(parts.last!), 0)
        let error = errno
        if removed != 0 && error != ENOENT {
            close(parent)
            throw StorageError(operation: operation, errno: error)
        }
        if durable, fsync(parent) != 0 {
            let error = errno
            close(parent)
            throw StorageError(operation: "fsync the directory of \(path)", errno: error)
        }
        close(parent)
        // Remove directories the delete emptied, innermost first; stop at the first that is not empty.
        parts.removeLast()
        while !parts.isEmpty {
            let directoryParent = try openParent(of: parts, create: false, for: operation)
            let removedDirectory = unlinkat(directoryParent, String(parts.last!), AT_REMOVEDIR) == 0
            close(directoryParent)
            if !removedDirectory { break }
            parts.removeLast()
        }
    }

    /// Removes a file the module built (under `.brpl`); a missing one is fine.
    func removeFile(rawPath: String) throws(StorageError) {
        let parts = components(rawPath)
        let parent: Int32
        do {
            parent = try openParent(of: parts, create: false, for: "remove \(rawPath)")
        } catch where error.errno == ENOENT {
            return
        }
        defer { close(parent) }
        if unlinkat(parent, String(parts.last!), 0) != 0 && errno != ENOENT {
            throw StorageError(operation: "remove \(rawPath)", errno: errno)
        }
    }

    /// Makes a directory's entries durable (after creates, renames and deletes).
    func syncDirectory(containing path: ReplicatedPath) throws(StorageError) {
        let parent = try openParent(of: components(path.string), create: false, for: "fsync the directory of \(path)")
        defer { close(parent) }
        if fsync(parent) != 0 { throw StorageError(operation: "fsync the directory of \(path)", errno: errno) }
    }

    /// Makes everything written to the file system that holds the data directory durable,
    /// with one device flush however many files and directories changed (`syncfs(2)`).
    ///
    /// It also flushes dirty data of other programs on the same file system: the price of one
    /// flush per group commit instead of one per touched file (see Docs/Semantics.md).
    func syncFileSystem() throws(StorageError) {
        if injectedFaults.takeFlushFailure() {
            throw StorageError(operation: "syncfs the file system of data directory \(path) (injected failure)", errno: EIO)
        }
        if brpl_syncfs(rootDescriptor) != 0 {
            throw StorageError(operation: "syncfs the file system of data directory \(path)", errno: errno)
        }
    }

    // MARK: Listing

    /// Every regular file below the data directory, except the reserved `.brpl`, with its size.
    /// Symlinks and other special files are skipped.
    func listFiles() throws(StorageError) -> [(path: ReplicatedPath, size: Int)] {
        var files: [(path: ReplicatedPath, size: Int)] = []
        // A fresh descriptor, not dup(): a duplicate shares the read position, so a second
        // listing through the same root would start at the end and find nothing.
        let root = openat(rootDescriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw StorageError(operation: "list \(path)", errno: errno) }
        try walk(descriptor: root, prefix: "", into: &files)
        return files.sorted { $0.path.string < $1.path.string }
    }

    private func walk(descriptor: Int32, prefix: String, into files: inout [(path: ReplicatedPath, size: Int)]) throws(StorageError) {
        guard let directory = fdopendir(descriptor) else {
            let error = errno
            close(descriptor)
            throw StorageError(operation: "list \(prefix.isEmpty ? path : prefix)", errno: error)
        }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." || (prefix.isEmpty && name == Self.reservedDirectory) { continue }
            var info = stat()
            guard fstatat(dirfd(directory), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let relative = prefix.isEmpty ? name : prefix + "/" + name
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(dirfd(directory), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { try walk(descriptor: child, prefix: relative, into: &files) }
            case S_IFREG:
                if let path = try? ReplicatedPath(relative) { files.append((path, Int(info.st_size))) }
            default:
                continue
            }
        }
    }
}
