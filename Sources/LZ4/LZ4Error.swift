/// An error from the LZ4 layer, with a message a person can act on.
///
/// A public struct around a private code so that new cases can be added without breaking
/// callers that switch over them.
public struct LZ4Error: Error, Hashable, Sendable, CustomStringConvertible {
    enum Code: Hashable, Sendable {
        case inputTooLarge(bytes: Int)
        case outputTooSmall(capacity: Int, needed: Int)
        case declaredSizeAboveLimit(declared: Int, limit: Int)
        case corruptInput(inputBytes: Int)
        case sizeMismatch(declared: Int, actual: Int)
    }

    let code: Code

    /// The input is larger than LZ4's block format can hold (about 2 GiB).
    public static func inputTooLarge(bytes: Int) -> LZ4Error { LZ4Error(code: .inputTooLarge(bytes: bytes)) }
    /// The destination cannot hold the worst-case result.
    public static func outputTooSmall(capacity: Int, needed: Int) -> LZ4Error {
        LZ4Error(code: .outputTooSmall(capacity: capacity, needed: needed))
    }
    /// A block says it decompresses to more bytes than the caller allows.
    public static func declaredSizeAboveLimit(declared: Int, limit: Int) -> LZ4Error {
        LZ4Error(code: .declaredSizeAboveLimit(declared: declared, limit: limit))
    }
    /// The compressed bytes are not a valid LZ4 block, or would decompress past the destination.
    public static func corruptInput(inputBytes: Int) -> LZ4Error { LZ4Error(code: .corruptInput(inputBytes: inputBytes)) }
    /// The block decompressed to a different size than it declared.
    public static func sizeMismatch(declared: Int, actual: Int) -> LZ4Error {
        LZ4Error(code: .sizeMismatch(declared: declared, actual: actual))
    }

    public var description: String {
        switch code {
        case .inputTooLarge(let bytes):
            return "LZ4: input of \(bytes) bytes is larger than an LZ4 block can hold (\(LZ4Block.maximumInputBytes) bytes)"
        case .outputTooSmall(let capacity, let needed):
            return "LZ4: destination of \(capacity) bytes is smaller than the \(needed) bytes needed"
        case .declaredSizeAboveLimit(let declared, let limit):
            return "LZ4: block declares \(declared) decompressed bytes, above the limit of \(limit) bytes"
        case .corruptInput(let inputBytes):
            return "LZ4: \(inputBytes) compressed bytes are corrupt or truncated"
        case .sizeMismatch(let declared, let actual):
            return "LZ4: block declared \(declared) decompressed bytes but held \(actual)"
        }
    }
}
