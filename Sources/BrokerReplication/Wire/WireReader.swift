import NIOCore

/// Reads the fields of one frame body, turning every short or bad field into a
/// ``WireError`` that names the frame type and the field.
struct WireReader {
    private var buffer: ByteBuffer
    private let type: FrameType

    init(_ body: ByteBuffer, type: FrameType) {
        self.buffer = body
        self.type = type
    }

    func malformed(_ reason: String) -> WireError {
        WireError(.malformedFrame(type: type, reason: reason))
    }

    mutating func integer<Value: FixedWidthInteger>(_ field: String, as: Value.Type = Value.self) throws(WireError) -> Value {
        guard let value = buffer.readInteger(as: Value.self) else {
            throw malformed("\(field) needs \(MemoryLayout<Value>.size) bytes, \(buffer.readableBytes) left")
        }
        return value
    }

    mutating func bytes(_ field: String, count: Int) throws(WireError) -> [UInt8] {
        guard let bytes = buffer.readBytes(length: count) else {
            throw malformed("\(field) needs \(count) bytes, \(buffer.readableBytes) left")
        }
        return bytes
    }

    /// A UTF-8 string behind a one-byte length, 1...255 bytes.
    mutating func shortString(_ field: String) throws(WireError) -> String {
        let length = Int(try integer(field + " length", as: UInt8.self))
        if length == 0 { throw malformed("\(field) is empty") }
        return try utf8(field, length: length)
    }

    /// A UTF-8 string behind a two-byte length, at most `maximumBytes`.
    mutating func longString(_ field: String, maximumBytes: Int) throws(WireError) -> String {
        let length = Int(try integer(field + " length", as: UInt16.self))
        if length > maximumBytes { throw malformed("\(field) of \(length) bytes is above the limit of \(maximumBytes) bytes") }
        return try utf8(field, length: length)
    }

    private mutating func utf8(_ field: String, length: Int) throws(WireError) -> String {
        guard let slice = buffer.readSlice(length: length) else {
            throw malformed("\(field) needs \(length) bytes, \(buffer.readableBytes) left")
        }
        guard let string = String(validating: slice.readableBytesView, as: UTF8.self) else {
            throw malformed("\(field) is not valid UTF-8")
        }
        return string
    }

    /// The rest of the body, without a copy.
    mutating func remainder() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes)!
    }

    /// Refuses bytes after the last field, so every accepted frame has exactly one meaning.
    func finish() throws(WireError) {
        if buffer.readableBytes > 0 { throw malformed("\(buffer.readableBytes) unexpected bytes after the last field") }
    }
}

extension ByteBuffer {
    /// Writes a string behind a one-byte length; callers keep it within 1...255 bytes.
    mutating func writeShortString(_ string: String) {
        precondition((1...255).contains(string.utf8.count), "short strings are 1...255 bytes")
        writeInteger(UInt8(string.utf8.count))
        writeString(string)
    }

    /// Writes a string behind a two-byte length; callers keep it within 65535 bytes.
    mutating func writeLongString(_ string: String) {
        precondition(string.utf8.count <= Int(UInt16.max), "long strings are at most 65535 bytes")
        writeInteger(UInt16(string.utf8.count))
        writeString(string)
    }
}
