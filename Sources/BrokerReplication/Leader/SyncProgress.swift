/// How far a full sync to one follower has got, for status.
///
/// The leader updates it about every 200 ms while it sends file contents. The counts cover
/// only the files the follower asked for, and of those only the bytes it lacks: a file it
/// holds a matching prefix of is sent from the end of that prefix.
public struct SyncProgress: Sendable, Codable, Equatable {
    /// The LSN the files are a consistent cut at; the follower streams from the next LSN on.
    public var cutLSN: UInt64
    /// Requested files sent so far.
    public var filesDone: Int
    /// Files the follower requested.
    public var files: Int
    /// Bytes of file contents sent so far (before compression).
    public var bytesDone: Int
    /// Bytes of file contents to send in all: what the requested files hold at the cut beyond
    /// the prefixes the follower keeps.
    public var bytes: Int
    /// Bytes of the requested files that the follower already held and keeps (not sent).
    public var bytesKept: Int
    /// Average rate since the sync started, in bytes of file contents per second.
    public var bytesPerSecond: Int
    /// Estimated seconds until all bytes are sent, at ``bytesPerSecond`` (0 while that is 0).
    public var secondsLeft: Int
}
