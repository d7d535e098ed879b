import Foundation

/// A file system mounted for a test (with the `mount` command, so it needs root).
final class ScratchMount: Sendable, CustomStringConvertible {
    let path: String
    let options: String

    private init(path: String, options: String) {
        self.path = path
        self.options = options
    }

    /// Mounts a tmpfs with `options` (e.g. `size=2m`, `ro`) at `path`, creating the directory.
    static func tmpfs(at path: String, options: String) throws -> ScratchMount {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try run("/usr/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path])
        return ScratchMount(path: path, options: options)
    }

    /// `mount -o remount,<options>`: e.g. `size=64m`, `ro`, `rw`.
    func remount(options: String) throws {
        try Self.run("/usr/bin/mount", ["-o", "remount," + options, path])
    }

    /// Unmounts; lazily (detached now, freed once the last file is closed) if it is busy.
    func unmount() {
        if (try? Self.run("/usr/bin/umount", [path])) == nil { _ = try? Self.run("/usr/bin/umount", ["-l", path]) }
    }

    var description: String { "a tmpfs (\(options)) mounted at \(path)" }

    @discardableResult
    static func run(_ command: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw DiskTestFailure("\(command) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(text)")
        }
        return text
    }
}

/// A mount, unmount or chmod that failed, with what it printed.
struct DiskTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
