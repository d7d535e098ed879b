import Foundation
import Logging
import ServiceLifecycle

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

    /// Writes `snapshot()` until the task is cancelled; the last write takes its snapshot after
    /// the cancellation, so it shows the state the node stopped in.
    func run<Snapshot: Encodable>(_ snapshot: @Sendable () -> Snapshot) async {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var failing = false
        while true {
            // Read before the snapshot: a cancellation during this write still gets a later one.
            let cancelled = Task.isCancelled
            do {
                try write(encoder.encode(snapshot()))
                if failing { logger.info("status file written again", metadata: ["path": "\(path)"]) }
                failing = false
            } catch {
                if !failing { logger.warning("cannot write the status file", metadata: ["path": "\(path)", "error": "\(error)"]) }
                failing = true
            }
            if cancelled { return }
            // Cancelled while sleeping: the next round writes the final state and returns.
            try? await Task.sleep(for: interval)
        }
    }

    /// `run(snapshot)` as a service: a graceful shutdown ends it like cancellation does, with
    /// one last write. A `ServiceGroup` stops it after the services listed after it, so that
    /// write shows where they stopped.
    func service<Snapshot: Encodable & SendableMetatype>(_ snapshot: @escaping @Sendable () -> Snapshot) -> ClosureService {
        ClosureService { await cancelWhenGracefulShutdown { await run(snapshot) } }
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
