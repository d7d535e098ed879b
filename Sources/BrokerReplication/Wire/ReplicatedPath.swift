#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file's path relative to the data directory, checked before it touches the disk.
///
/// Paths come from the network, so they are untrusted: a valid path is non-empty UTF-8,
/// relative, normalised (no empty, `.` or `..` component, no trailing slash), free of NUL
/// bytes, outside the reserved top-level `.brpl` directory, and within the length limits. Symlinks are checked where the path is opened,
/// since only the file system knows them.
public struct ReplicatedPath: Hashable, Sendable, CustomStringConvertible {
    /// The path as given, e.g. `"queues/orders/segment.000042"`.
    public let string: String

    /// The longest component Linux allows (NAME_MAX), in bytes.
    public static let maximumComponentBytes = 255

    /// Checks `string` and wraps it.
    ///
    /// - Parameters:
    ///   - string: the path relative to the data directory, e.g. `"queues/orders/segment.1"`.
    ///   - maximumBytes: the longest path allowed, in UTF-8 bytes; the leader passes its
    ///     ``WireLimits/maximumPathBytes`` (default 4096).
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidPath`` and a
    ///   message naming the path and what is wrong with it, e.g.
    ///   `invalid path "../b": contains ".."; paths must stay inside the data directory`.
    public init(_ string: String, maximumBytes: Int = WireLimits.default.maximumPathBytes) throws(ReplicationError) {
        do {
            try self.init(validating: string, maximumBytes: maximumBytes)
        } catch {
            throw ReplicationError(error)
        }
    }

    /// Checks a path that came from a peer, as a decoder does: a bad one is a ``WireError``.
    init(validating string: String, maximumBytes: Int = WireLimits.default.maximumPathBytes) throws(WireError) {
        try Self.validate(string, maximumBytes: maximumBytes)
        self.string = string
    }

    /// Wraps a path that came out of ``init(_:maximumBytes:)`` before: only for paths this
    /// process produced itself.
    init(alreadyValidated string: String) {
        self.string = string
    }

    /// The path as given (``string``).
    public var description: String { string }

    // Swift's String equality is Unicode-canonical ("é" composed equals "e" + accent), but the
    // file system compares bytes: two such paths are two files, so they must be two keys.
    // Both work on the contiguous UTF-8 of native strings (a memcmp, one hash call): they
    // run on every write, under the leader's state lock.
    /// Whether two paths have the same UTF-8 bytes; canonically equivalent strings that differ
    /// in bytes are two paths.
    ///
    /// - Parameters:
    ///   - lhs: one path to compare.
    ///   - rhs: the other path.
    public static func == (lhs: ReplicatedPath, rhs: ReplicatedPath) -> Bool {
        let left = lhs.string.utf8
        let right = rhs.string.utf8
        guard left.count == right.count else { return false }
        let fast = left.withContiguousStorageIfAvailable { l in
            right.withContiguousStorageIfAvailable { r in Self.equalBytes(UnsafeRawBufferPointer(l), UnsafeRawBufferPointer(r)) }
        }
        return (fast ?? nil) ?? left.elementsEqual(right)
    }

    /// `memcmp`: `elementsEqual` on buffers goes byte by byte (4% of a follower's samples).
    private static func equalBytes(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        guard let l = left.baseAddress, let r = right.baseAddress else { return left.count == 0 }
        return memcmp(l, r, left.count) == 0
    }

    /// Whether the path's UTF-8 is exactly `bytes` (the decoder's path cache).
    func hasUTF8(equalTo bytes: UnsafeRawBufferPointer) -> Bool {
        let utf8 = string.utf8
        guard utf8.count == bytes.count else { return false }
        return utf8.withContiguousStorageIfAvailable { own in
            Self.equalBytes(UnsafeRawBufferPointer(own), bytes)
        } ?? utf8.elementsEqual(bytes)
    }

    /// Hashes the path's UTF-8 bytes, consistent with ``==(_:_:)``.
    ///
    /// - Parameter hasher: the hasher to feed the bytes to.
    public func hash(into hasher: inout Hasher) {
        let utf8 = string.utf8
        if utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            Array(utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    private static func validate(_ string: String, maximumBytes: Int) throws(WireError) {
        var contiguous = string
        if let reason = contiguous.withUTF8({ firstProblem(in: $0, maximumBytes: maximumBytes) }) {
            throw WireError(.invalidPath(path: string, reason: reason))
        }
    }

    /// The first rule `bytes` breaks, or nil. One pass over the bytes, with no allocation: it
    /// runs on every append (the generic `UTF8View` searches it replaced were about 8% of a
    /// leader's samples with 155-byte records).
    private static func firstProblem(in bytes: UnsafeBufferPointer<UInt8>, maximumBytes: Int) -> String? {
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        let count = bytes.count
        if count == 0 { return "empty" }
        if count > maximumBytes { return "\(count) bytes, above the limit of \(maximumBytes) bytes" }
        if bytes[0] == slash { return "absolute; paths must be relative to the data directory" }
        if memchr(bytes.baseAddress!, 0, count) != nil { return "contains a NUL byte" }
        if bytes.starts(with: ".brpl".utf8), count == 5 || bytes[5] == slash {
            return "\".brpl\" is reserved for the module's own files"
        }
        var start = 0
        while true {
            var end = start
            while end < count && bytes[end] != slash { end += 1 }
            let length = end - start
            if length == 0 { return "empty component (\"//\" or a trailing \"/\"); paths must be normalised" }
            if length == 2 && bytes[start] == dot && bytes[start + 1] == dot {
                return "contains \"..\"; paths must stay inside the data directory"
            }
            if length == 1 && bytes[start] == dot { return "contains \".\"; paths must be normalised" }
            if length > maximumComponentBytes {
                return "a component of \(length) bytes, above the limit of \(maximumComponentBytes) bytes"
            }
            guard end < count else { return nil }
            start = end + 1
        }
    }
}
