/// Which files the producers append to.
enum FileLayout: Sendable, Equatable {
    /// Each producer appends to one queue of its own, `queues/q<producer>/segment.<n>`, and
    /// keeps its newest `keepSegments` segments: the benchmark's original load.
    case segmentsPerProducer(keepSegments: Int)
    /// The load spread over `files` queues, `q<NNNNN>/seg-<k>`, as a broker with many queues
    /// has them: producer p owns queues p, p + P, p + 2P, … (P producers) and appends to them
    /// in turn. A queue keeps its newest 2 segments, so the disk holds about 2 files per queue.
    case spread(files: Int)

    /// The queues producer `producer` of `producers` appends to, in the order it takes them.
    func queues(ofProducer producer: Int, producers: Int) -> [SegmentedQueue] {
        switch self {
        case .segmentsPerProducer(let keepSegments):
            return [SegmentedQueue(name: "queues/q\(producer)", style: .padded, keepSegments: keepSegments)]
        case .spread(let files):
            return stride(from: producer, to: files, by: producers).map { queue in
                SegmentedQueue(name: "q" + SegmentedQueue.zeroPadded(queue, digits: 5), style: .short, keepSegments: 2)
            }
        }
    }

    /// "each producer its own segment files" or "spread over 10000 files".
    func label(producers: Int, segmentBytes: Int) -> String {
        let segment = segmentBytes % (1 << 20) == 0 ? "\(segmentBytes >> 20) MiB" : "\(segmentBytes) bytes"
        switch self {
        case .segmentsPerProducer(let keepSegments):
            return "each producer its own segment files (a new one every \(segment), newest \(keepSegments) kept)"
        case .spread(let files):
            let perProducer = (files + producers - 1) / producers
            return "spread over \(files) files (up to \(perProducer) per producer, round-robin; a queue rolls at \(segment) and keeps 2 segments)"
        }
    }

    /// The `--files` setting, nil for the original load.
    var files: Int? {
        if case .spread(let files) = self { return files }
        return nil
    }
}

/// One broker queue: a run of segment files of which it appends to the newest and keeps
/// `keepSegments`, deleting the oldest as it rolls (as a broker does once consumers acked it).
struct SegmentedQueue: Sendable {
    enum Style: Sendable {
        /// `segment.0000000001`
        case padded
        /// `seg-1`
        case short
    }

    let name: String
    let style: Style
    let keepSegments: Int
    private(set) var segment = 1
    private(set) var segmentBytes = 0
    /// Segment files appended to so far (each new segment counts at its first append).
    private(set) var filesStarted = 0

    init(name: String, style: Style, keepSegments: Int) {
        self.name = name
        self.style = style
        self.keepSegments = keepSegments
    }

    /// The segment appends go to now.
    var path: String { path(of: segment) }

    func path(of segment: Int) -> String {
        switch style {
        case .padded: name + "/segment." + Self.zeroPadded(segment, digits: 10)
        case .short: name + "/seg-\(segment)"
        }
    }

    /// Counts `bytes` appended to ``path``; past `rollBytes` the queue rolls to a new segment
    /// and returns the path of the one to delete, if it now holds more than `keepSegments`.
    mutating func appended(bytes: Int, rollBytes: Int) -> String? {
        if segmentBytes == 0 { filesStarted += 1 }
        segmentBytes += bytes
        guard segmentBytes >= rollBytes else { return nil }
        segment += 1
        segmentBytes = 0
        return segment > keepSegments ? path(of: segment - keepSegments) : nil
    }

    static func zeroPadded(_ value: Int, digits: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
