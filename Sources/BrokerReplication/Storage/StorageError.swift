#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from the file system, naming the file and the operation.
///
/// The module's own: a public API reports it as a ``ReplicationError`` with code
/// ``ReplicationError/Code/storage`` and this error's description as its message.
// `@_spi(Benchmarks)`: the micro-benchmarks call decoders and storage that throw it; brokers
// never see it (public APIs wrap it in ReplicationError).
@_spi(Benchmarks) public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was being done, e.g. "open queues/q1/segment for writing".
    let operation: String
    /// The errno value.
    let errno: Int32

    /// The operation, the system's text for the errno and the errno, e.g.
    /// `open queues/q1/segment for writing: No space left on device (errno 28)`.
    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// True when retrying later may succeed because space may be freed (ENOSPC, EDQUOT).
    var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
}
