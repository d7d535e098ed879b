import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a node's status as pretty-printed JSON with sorted keys to a file, every 200 ms.
///
/// Each write goes to `PATH.tmp` and is renamed over `PATH`, so a reader never sees a
/// half-written file. A failing write is logged once, not every 200 ms.
struct StatusFileWriter: Sendable {
    let path: String
    var interval: Duration = .milliseconds(200)
    let logger: Logger

    /// Writes `snapshot()` until the task is cancelled, then once more.
    func run<Snapshot: Encodable>(_ snapshot: @Sendable () -> Snapshot) async {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var failing = false
        while true {
            do {
                try write(encoder.encode(snapshot()))
                if failing { logger.info("status file written again", metadata: ["path": "\(path)"]) }
                failing = false
            } catch {
                if !failing { logger.warning("cannot write the status file", metadata: ["path": "\(path)", "error": "\(error)"]) }
                failing = true
            }
            if Task.isCancelled { return }
            // Cancelled while sleeping: write the final state once more before returning.
            try? await Task.sleep(for: interval)
        }
    }

    private func write(_ json: Data) throws {
        let temporary = path + ".tmp"
        try (json + Data("\n".utf8)).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            throw StatusFileError(message: "cannot rename \(temporary) over \(path): \(String(cString: strerror(errno)))")
        }
    }
}

struct StatusFileError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
