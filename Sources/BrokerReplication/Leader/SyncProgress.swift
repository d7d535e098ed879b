/// How far a full sync to one follower has got, for status.
///
/// The leader updates it about every 200 ms while it sends file contents. The counts cover
/// only the files the follower asked for: those it lacks or holds with other contents.
public struct SyncProgress: Sendable, Codable, Equatable {
    /// The LSN the files are a consistent cut at; the follower streams from the next LSN on.
    public var cutLSN: UInt64
    /// Requested files sent in full so far.
    public var filesDone: Int
    /// Files the follower requested.
    public var files: Int
    /// Bytes of file contents sent so far (before compression).
    public var bytesDone: Int
    /// Bytes of file contents to send in all: the sizes of the requested files at the cut.
    public var bytes: Int
    /// Average rate since the sync started, in bytes of file contents per second.
    public var bytesPerSecond: Int
    /// Estimated seconds until all bytes are sent, at ``bytesPerSecond`` (0 while that is 0).
    public var secondsLeft: Int
}
