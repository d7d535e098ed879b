/// The bounds every decoder checks before it allocates or trusts a length from the network.
///
/// Both ends must agree on the bounds for data frames: a leader must never build a frame
/// that its followers refuse. The defaults fit the default batch size (64 KiB) with room
/// for a single large chunk of a big write.
public struct WireLimits: Hashable, Sendable {
    /// The largest body of a data frame, in bytes (compressed batch plus its 17-byte header).
    public var maximumDataFrameBodyBytes: Int
    /// The largest decompressed batch, in bytes; checked before the decompression buffer
    /// is allocated.
    public var maximumBatchBytes: Int
    /// The most records one batch may declare.
    public var maximumRecordsPerBatch: Int
    /// The longest relative path, in UTF-8 bytes (Linux's PATH_MAX is 4096).
    public var maximumPathBytes: Int

    /// The largest body of any frame other than data frames (handshake, ack, heartbeat),
    /// in bytes. Fixed by the protocol, so a peer that is not speaking it is refused early.
    public static let maximumControlFrameBodyBytes = 4096

    /// Limits with the given bounds; each defaults to the value in ``WireLimits/default``.
    ///
    /// - Parameters:
    ///   - maximumDataFrameBodyBytes: the largest data frame body, in bytes (default 9 MiB).
    ///   - maximumBatchBytes: the largest decompressed batch, in bytes (default 8 MiB).
    ///   - maximumRecordsPerBatch: the most records one batch may declare (default 1 Mi).
    ///   - maximumPathBytes: the longest relative path, in UTF-8 bytes (default 4096).
    public init(
        maximumDataFrameBodyBytes: Int = 9 * 1024 * 1024,
        maximumBatchBytes: Int = 8 * 1024 * 1024,
        maximumRecordsPerBatch: Int = 1 << 20,
        maximumPathBytes: Int = 4096
    ) {
        self.maximumDataFrameBodyBytes = maximumDataFrameBodyBytes
        self.maximumBatchBytes = maximumBatchBytes
        self.maximumRecordsPerBatch = maximumRecordsPerBatch
        self.maximumPathBytes = maximumPathBytes
    }

    /// The defaults: 9 MiB data frames, 8 MiB batches, 1 Mi records a batch, 4096-byte paths.
    public static let `default` = WireLimits()
}
