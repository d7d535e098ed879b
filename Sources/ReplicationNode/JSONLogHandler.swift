import ArgumentParser
import Foundation
import Logging

/// How `replication-node` writes its log lines: `--log-format`.
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// swift-log's `StreamLogHandler`: `<time> <level> <label>: <metadata> <message>`.
    case text
    /// One JSON object per line (``JSONLogHandler``), for a log shipper.
    case json
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A swift-log handler that writes one JSON object per line to stderr:
/// `{"time":"2026-12-01T03:40:00.123Z","level":"info","label":"…","message":"…","metadata":{…}}`.
///
/// Metadata values keep their shape: a string stays a string, a nested dictionary or array
/// becomes a JSON object or array, so a figure logged as `"queueBytes": "16777216"` is read
/// back as that string. Every line is written with one `write(2)`, so lines from several
/// threads never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        var object: [String: Any] = [
            "time": Self.timestamp(),
            "level": event.level.rawValue,
            "label": label,
            "message": event.message.description,
        ]
        if !merged.isEmpty { object["metadata"] = merged.mapValues(Self.json) }
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { raw in _ = writeToStandardError(raw) }
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }

    private static func timestamp() -> String {
        Date.now.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// One write(2) of a whole line to stderr.
private func writeToStandardError(_ bytes: UnsafeRawBufferPointer) -> Int {
    write(2, bytes.baseAddress, bytes.count)
}
