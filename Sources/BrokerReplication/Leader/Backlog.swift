import DequeModule

/// The most recent sealed frames, bounded by the memory they hold, for followers that resume (partial
/// resync, like Redis's PSYNC) or catch up after a full sync.
struct Backlog {
    let maximumBytes: Int
    private var batches: Deque<SealedBatch> = []
    /// Memory held by the frames (their buffers' capacity, not just their wire bytes), so that
    /// `backlogBytes` bounds the leader's memory.
    private(set) var bytes = 0

    init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    /// The first LSN still held, or nil when empty.
    var firstLSN: UInt64? { batches.first?.firstLSN }
    /// The last LSN held, or nil when empty.
    var lastLSN: UInt64? { batches.last?.lastLSN }
    var batchCount: Int { batches.count }

    /// Adds the newest batch and drops the oldest ones past the bound (always keeping the newest).
    mutating func append(_ batch: SealedBatch) {
        precondition(batches.last.map { $0.lastLSN + 1 == batch.firstLSN } ?? true, "backlog batches are consecutive")
        batches.append(batch)
        bytes += batch.memoryBytes
        while bytes > maximumBytes, batches.count > 1 {
            bytes -= batches.removeFirst().memoryBytes
        }
    }

    /// The held batch that starts at `lsn`, if any.
    func batch(startingAt lsn: UInt64) -> SealedBatch? {
        guard let first = batches.first, let last = batches.last, lsn >= first.firstLSN, lsn <= last.lastLSN else { return nil }
        var low = 0
        var high = batches.count - 1
        while low < high {
            let middle = (low + high) / 2
            if batches[middle].lastLSN < lsn { low = middle + 1 } else { high = middle }
        }
        return batches[low].firstLSN == lsn ? batches[low] : nil
    }

    enum Lookup: Equatable {
        /// Batches starting exactly at the requested LSN (empty when nothing newer is held).
        case batches([SealedBatch])
        /// The requested LSN is older than the backlog, or not at a batch boundary.
        case unavailable
    }

    /// Batches from `lsn` on, about `maximumBytes` in all (at least one when any is held).
    ///
    /// - Parameter nextLSN: the leader's next sealed LSN: asking for it means "up to date".
    func batches(from lsn: UInt64, nextLSN: UInt64, upToBytes maximumBytes: Int) -> Lookup {
        if lsn == nextLSN { return .batches([]) }
        guard let first = batches.first, lsn >= first.firstLSN, lsn < nextLSN else { return .unavailable }
        // Binary search for the batch that starts at lsn.
        var low = 0
        var high = batches.count - 1
        while low < high {
            let middle = (low + high) / 2
            if batches[middle].lastLSN < lsn { low = middle + 1 } else { high = middle }
        }
        guard batches[low].firstLSN == lsn else { return .unavailable }
        var result: [SealedBatch] = []
        var total = 0
        var index = low
        while index < batches.count, result.isEmpty || total + batches[index].wireBytes <= maximumBytes {
            result.append(batches[index])
            total += batches[index].wireBytes
            index += 1
        }
        return .batches(result)
    }
}
