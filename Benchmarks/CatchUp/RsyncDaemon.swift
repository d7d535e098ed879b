import Foundation

/// An rsync daemon on 127.0.0.1 serving one directory as module `data`, for comparison.
struct RsyncDaemon {
    let process: Process
    let port: Int

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func executable() throws -> String {
        for candidate in ["/usr/bin/rsync", "/bin/rsync", "/usr/local/bin/rsync"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw Failure(description: "rsync is not installed (apt-get install rsync), or pass --skip-rsync")
    }

    static func start(serving directory: String, root: String) throws -> RsyncDaemon {
        let rsync = try executable()
        let port = Int.random(in: 20_000...60_000)
        let configuration = root + "/rsyncd.conf"
        try """
            use chroot = no
            [data]
            path = \(directory)
            read only = yes
            exclude = .brpl/
            """.write(toFile: configuration, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: rsync)
        process.arguments = ["--daemon", "--no-detach", "--address=127.0.0.1", "--port=\(port)", "--config=\(configuration)"]
        try process.run()
        // The daemon listens within milliseconds; a client that connects too early retries below.
        Thread.sleep(forTimeInterval: 0.3)
        return RsyncDaemon(process: process, port: port)
    }

    /// Copies the module into `destination` with `rsync -a --fsync`; returns the seconds.
    func copy(into destination: String) throws -> Double {
        let started = ContinuousClock.now
        let client = Process()
        client.executableURL = URL(fileURLWithPath: try Self.executable())
        client.arguments = ["-a", "--fsync", "rsync://127.0.0.1:\(port)/data/", destination + "/"]
        try client.run()
        client.waitUntilExit()
        guard client.terminationStatus == 0 else { throw Failure(description: "rsync exited with status \(client.terminationStatus)") }
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
