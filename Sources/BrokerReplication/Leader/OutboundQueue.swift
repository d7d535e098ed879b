import DequeModule

/// One follower's queue of sealed frames waiting for its socket, bounded in bytes and frames.
///
/// `trySend` never waits: when a frame does not fit, it says so and the caller evicts the
/// follower. Frames are shared, immutable buffers: queueing one costs a reference, not a copy.
@_spi(Benchmarks) public struct OutboundQueue: Sendable {
    let maximumBytes: Int
    let maximumFrames: Int
    private var frames: Deque<SealedBatch> = []
    private(set) var queuedBytes = 0

    @_spi(Benchmarks) public init(maximumBytes: Int, maximumFrames: Int) {
        self.maximumBytes = maximumBytes
        self.maximumFrames = maximumFrames
    }

    var queuedFrames: Int { frames.count }
    /// When the oldest queued frame was sealed.
    var oldestSealedAt: ContinuousClock.Instant? { frames.first?.sealedAt }
    var isEmpty: Bool { frames.isEmpty }

    @_spi(Benchmarks) public enum TrySendResult: Equatable, Sendable {
        case enqueued
        /// The frame would take the queue past a bound: the follower is too far behind.
        case full(queuedBytes: Int, queuedFrames: Int)
    }

    @_spi(Benchmarks) public mutating func trySend(_ batch: SealedBatch) -> TrySendResult {
        guard frames.count < maximumFrames, queuedBytes + batch.wireBytes <= maximumBytes else {
            return .full(queuedBytes: queuedBytes, queuedFrames: frames.count)
        }
        frames.append(batch)
        queuedBytes += batch.wireBytes
        return .enqueued
    }

    /// Takes frames from the front, at least one and about `maximumBytes` in all.
    @_spi(Benchmarks) public mutating func take(upToBytes maximumBytes: Int) -> [SealedBatch] {
        var taken: [SealedBatch] = []
        var bytes = 0
        while let first = frames.first, taken.isEmpty || bytes + first.wireBytes <= maximumBytes {
            taken.append(frames.removeFirst())
            bytes += first.wireBytes
        }
        queuedBytes -= bytes
        return taken
    }

    mutating func removeAll() {
        frames.removeAll()
        queuedBytes = 0
    }
}
