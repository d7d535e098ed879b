import BrokerReplication
import Foundation
import Synchronization

/// Chooses the segment file each record of a queue goes to: `queues/<name>/segment-<n>`,
/// starting the next segment once the current one holds `segmentBytes`.
///
/// Only the choice is made here, under a lock; the append itself happens in
/// `ReplicationLeader`, which writes each record whole at the file's end. A record whose
/// append then fails still counts, so that segment just ends a little early.
final class QueueSegments: Sendable {
    private struct Segment {
        var number: Int
        var bytes: Int
    }

    private let dataDirectory: String
    private let segmentBytes: Int
    private let current = Mutex<[String: Segment]>([:])

    init(dataDirectory: String, segmentBytes: Int) {
        self.dataDirectory = dataDirectory
        self.segmentBytes = max(1, segmentBytes)
    }

    /// The path, relative to the data directory, that the next record of `queue` goes to.
    ///
    /// - Throws: ``QueueNameError`` when `queue` is not a usable name.
    func segment(for queue: String, recordBytes: Int) throws(QueueNameError) -> String {
        try QueueNameError.check(queue)
        return current.withLock { current in
            var segment = current[queue] ?? lastSegment(of: queue)
            if segment.bytes > 0 && segment.bytes + recordBytes > segmentBytes {
                segment = Segment(number: segment.number + 1, bytes: 0)
            }
            segment.bytes += recordBytes
            current[queue] = segment
            return "queues/\(queue)/segment-\(segment.number)"
        }
    }

    /// The highest-numbered segment already on disk (after a restart), or segment 1.
    private func lastSegment(of queue: String) -> Segment {
        let directory = "\(dataDirectory)/queues/\(queue)"
        let numbers = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .compactMap { $0.hasPrefix("segment-") ? Int($0.dropFirst("segment-".count)) : nil }
        guard let last = numbers.max() else { return Segment(number: 1, bytes: 0) }
        let size = (try? FileManager.default.attributesOfItem(atPath: "\(directory)/segment-\(last)")[.size] as? Int) ?? 0
        return Segment(number: last, bytes: size)
    }
}

/// A queue name the broker refuses, with the reason (answered as 400 Bad Request).
struct QueueNameError: Error, CustomStringConvertible {
    let description: String

    /// Accepts 1 to 64 ASCII letters, digits, `-` and `_`: safe as one path component.
    static func check(_ name: String) throws(QueueNameError) {
        guard (1...64).contains(name.utf8.count) else {
            throw QueueNameError(description: "queue name must be 1...64 characters, got \(name.utf8.count)")
        }
        let allowed = name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        }
        guard allowed else {
            throw QueueNameError(description: "queue name \(name.debugDescription) may hold only ASCII letters, digits, '-' and '_'")
        }
    }
}

/// A cluster node's ``QueueSegments``, started afresh each time the node becomes leader: the
/// files changed while it followed, so what a former leadership counted no longer holds.
final class NodeSegments: Sendable {
    private let dataDirectory: String
    private let segmentBytes: Int
    private let current = Mutex<(leader: ReplicationLeader, segments: QueueSegments)?>(nil)

    init(dataDirectory: String, segmentBytes: Int) {
        self.dataDirectory = dataDirectory
        self.segmentBytes = segmentBytes
    }

    /// The segments that writes through `leader` go to.
    func segments(for leader: ReplicationLeader) -> QueueSegments {
        current.withLock { current in
            if let current, current.leader === leader { return current.segments }
            let segments = QueueSegments(dataDirectory: dataDirectory, segmentBytes: segmentBytes)
            current = (leader, segments)
            return segments
        }
    }
}
