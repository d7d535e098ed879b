import BrokerReplicationTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `replication-node` (or another executable of this package) as a child process whose
/// output goes to `directory/name.log`, through ``ChildProcess``.
final class NodeProcess: Sendable {
    let name: String
    let child: ChildProcess
    var logPath: String { child.logPath }

    /// Starts `executable` (next to this test bundle) with `arguments`.
    init(_ name: String, arguments: [String], directory: String, executable: String = "replication-node") throws {
        self.name = name
        // SwiftPM builds every executable the test target depends on into one directory.
        let path = try Self.binary().deletingLastPathComponent().appendingPathComponent(executable).path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw NodeTestError("\(path) is not an executable") }
        child = try ChildProcess(executable: path, arguments: arguments, logPath: directory + "/\(name).log")
    }

    var isRunning: Bool { child.isRunning }
    var processIdentifier: pid_t? { child.processIdentifier }
    var exitStatus: Int32? { child.exitStatus }
    var termination: String { child.termination }

    /// Kills the process if it still runs (for cleanup after a failed expectation).
    func killIfRunning() {
        if isRunning { send(signal: SIGKILL) }
    }

    func send(signal number: Int32) { child.send(signal: number) }

    /// Waits up to `timeout` for the process to exit; its exit status, or nil if it still runs
    /// or died from a signal.
    func waitForExit(timeout: Duration) async throws -> Int32? {
        try await child.waitForExit(timeout: timeout)
    }

    /// The last `lines` lines of the log, for failure messages.
    func logTail(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)"
        return "--- \(name) log (last \(lines) lines) ---\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// The built `replication-node`: next to the test bundle (SwiftPM builds it because the
    /// test target depends on it), or under `.build/debug` of this package.
    static func binary() throws -> URL {
        var candidates: [URL] = []
        for url in [Bundle.main.executableURL, Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])].compactMap({ $0 }) {
            var directory = url.deletingLastPathComponent()
            for _ in 0..<3 {
                candidates.append(directory.appendingPathComponent("replication-node"))
                directory = directory.deletingLastPathComponent()
            }
        }
        // This file is Tests/ReplicationNodeTests/Support/NodeProcess.swift in the package.
        var packageRoot = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { packageRoot = packageRoot.deletingLastPathComponent() }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/replication-node"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) && !candidate.hasDirectoryPath {
            return candidate
        }
        throw NodeTestError("replication-node not found; looked at \(candidates.map(\.path))")
    }
}

struct NodeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A port that was free a moment ago: bind 127.0.0.1:0, read the port, close the socket.
func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let streamSocket = Int32(SOCK_STREAM.rawValue)
    #else
    let streamSocket = SOCK_STREAM
    #endif
    let descriptor = socket(AF_INET, streamSocket, 0)
    guard descriptor >= 0 else { throw NodeTestError("socket() failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
        }
    }
    guard bound else { throw NodeTestError("bind/getsockname failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Every regular file under `root` (relative path → bytes), leaving out the `.brpl` folder.
func dataFiles(under root: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let rootURL = URL(fileURLWithPath: root)
    guard let enumerator = FileManager.default.enumerator(atPath: root) else { throw NodeTestError("cannot list \(root)") }
    while let relative = enumerator.nextObject() as? String {
        if relative == ".brpl" || relative.hasPrefix(".brpl/") {
            enumerator.skipDescendants()
            continue
        }
        let url = rootURL.appendingPathComponent(relative)
        let values = try url.resourceValues(forKeys: [.isRegularFileKey])
        if values.isRegularFile == true { files[relative] = try Data(contentsOf: url) }
    }
    return files
}
