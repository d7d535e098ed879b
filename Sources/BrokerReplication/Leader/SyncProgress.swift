/// How far a full sync to one follower has got, for status.
public struct SyncProgress: Sendable, Codable, Equatable {
    public var cutLSN: UInt64
    public var filesDone: Int
    public var files: Int
    public var bytesDone: Int
    public var bytes: Int
    public var bytesPerSecond: Int
    public var secondsLeft: Int
}
