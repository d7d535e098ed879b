import Foundation

@_spi(Benchmarks) @testable import BrokerReplication

/// Runs `body` with a fresh directory that is removed afterwards.
func withTemporaryRoot(_ body: (URL) throws -> Void) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("follower-disk-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    try body(root)
}

/// The bytes of the file at `url`.
func contents(_ url: URL) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: url))
}

/// Writes each file (relative path → bytes) below `root`, creating directories as needed.
func write(_ files: [String: [UInt8]], under root: URL) throws {
    for (path, bytes) in files {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }
}

/// Every file below `root` except `.brpl`, by relative path, with its bytes.
func snapshot(_ root: URL) throws -> [String: [UInt8]] {
    let directory = try DataDirectory(path: root.path)
    var files: [String: [UInt8]] = [:]
    for file in try directory.listFiles() {
        files[file.path.string] = try contents(root.appendingPathComponent(file.path.string))
    }
    return files
}
