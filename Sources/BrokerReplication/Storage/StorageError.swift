#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from the file system, naming the file and the operation.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was being done, e.g. "open queues/q1/segment for writing".
    public let operation: String
    /// The errno value.
    public let errno: Int32

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// True when retrying later may succeed because space may be freed (ENOSPC, EDQUOT).
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
}
