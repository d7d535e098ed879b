import Foundation
import Logging
import Synchronization

/// Keeps every log line of the nodes that log through it (and prints them with BRPL_TEST_LOG).
final class LogRecorder: Sendable {
    private let recorded = Mutex<[String]>([])
    private let echo = ProcessInfo.processInfo.environment["BRPL_TEST_LOG"] != nil

    var logger: Logger {
        Logger(label: "chaos") { [self] label in Handler(label: label, recorder: self) }
    }

    /// The lines that contain `text`, oldest first.
    func lines(containing text: String) -> [String] {
        recorded.withLock { $0.filter { $0.contains(text) } }
    }

    fileprivate func record(_ line: String) {
        recorded.withLock { $0.append(line) }
        if echo { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    private struct Handler: LogHandler {
        let label: String
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            recorder.record("\(event.level) \(event.message) \(fields)")
        }
    }
}
