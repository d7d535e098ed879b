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
    /// - Throws: ``WireError`` naming the path and what is wrong with it.
    public init(_ string: String, maximumBytes: Int = WireLimits.default.maximumPathBytes) throws(WireError) {
        try Self.validate(string, maximumBytes: maximumBytes)
        self.string = string
    }

    /// Wraps a path that came out of ``init(_:maximumBytes:)`` before: only for paths this
    /// process produced itself.
    package init(alreadyValidated string: String) {
        self.string = string
    }

    public var description: String { string }

    // Swift's String equality is Unicode-canonical ("é" composed equals "e" + accent), but the
    // file system compares bytes: two such paths are two files, so they must be two keys.
    // Both work on the contiguous UTF-8 of native strings (a memcmp, one hash call): they
    // run on every write, under the leader's state lock.
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

    public func hash(into hasher: inout Hasher) {
        let utf8 = string.utf8
        if utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            Array(utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    private static func validate(_ string: String, maximumBytes: Int) throws(WireError) {
        func invalid(_ reason: String) -> WireError { WireError(.invalidPath(path: string, reason: reason)) }
        let utf8 = string.utf8
        if utf8.isEmpty { throw invalid("empty") }
        if utf8.count > maximumBytes { throw invalid("\(utf8.count) bytes, above the limit of \(maximumBytes) bytes") }
        if utf8.first == UInt8(ascii: "/") { throw invalid("absolute; paths must be relative to the data directory") }
        if utf8.contains(0) { throw invalid("contains a NUL byte") }
        // The first component is ".brpl": checked without splitting (no allocation per record).
        if utf8.starts(with: ".brpl".utf8), utf8.count == 5 || utf8.dropFirst(5).first == UInt8(ascii: "/") {
            throw invalid("\".brpl\" is reserved for the module's own files")
        }
        // Component by component without splitting: no allocation per record.
        var start = utf8.startIndex
        while true {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            let component = utf8[start..<end]
            if component.isEmpty { throw invalid("empty component (\"//\" or a trailing \"/\"); paths must be normalised") }
            if component.elementsEqual("..".utf8) { throw invalid("contains \"..\"; paths must stay inside the data directory") }
            if component.elementsEqual(".".utf8) { throw invalid("contains \".\"; paths must be normalised") }
            let count = utf8.distance(from: start, to: end)
            if count > maximumComponentBytes {
                throw invalid("a component of \(count) bytes, above the limit of \(maximumComponentBytes) bytes")
            }
            guard end < utf8.endIndex else { break }
            start = utf8.index(after: end)
        }
    }
}
