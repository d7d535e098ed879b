import Synchronization

/// Reads a stream in a task of its own until it ends, so a test can look at what arrived
/// so far while the stream is still open.
final class StreamReader<Element: Sendable>: Sendable {
    private let seen = Mutex<[Element]>([])
    private let ended = Mutex(false)

    init(_ stream: AsyncStream<Element>) {
        Task { [self] in
            for await element in stream { seen.withLock { $0.append(element) } }
            ended.withLock { $0 = true }
        }
    }

    /// Everything read so far, in order.
    var elements: [Element] { seen.withLock { $0 } }
    /// Whether the stream has ended.
    var hasEnded: Bool { ended.withLock { $0 } }
}
