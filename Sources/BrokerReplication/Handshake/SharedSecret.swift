import Crypto
import Foundation

/// The secret every node of a cluster shares; it proves membership and never crosses the wire.
public struct SharedSecret: Sendable {
    /// The fewest bytes a secret may have: shorter secrets are too easy to guess offline
    /// from a recorded handshake.
    public static let minimumBytes = 16

    let key: SymmetricKey

    /// A secret from raw bytes.
    ///
    /// - Parameter bytes: the secret, at least ``minimumBytes`` bytes; the bytes are copied.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidSecret`` when it
    ///   has fewer than ``minimumBytes`` bytes.
    public init(bytes: some Collection<UInt8>) throws(ReplicationError) {
        guard bytes.count >= Self.minimumBytes else {
            throw .invalidSecret("the shared secret has \(bytes.count) bytes; it needs at least \(Self.minimumBytes)")
        }
        self.key = SymmetricKey(data: Array(bytes))
    }

    /// A secret read from a file; one trailing newline is ignored, so `echo secret > file` works.
    ///
    /// A trailing `\n`, `\r\n` or `\r` is dropped; every other byte of the file is the secret.
    ///
    /// - Parameter path: the file that holds the secret.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidSecret`` when the
    ///   file cannot be read or the secret in it has fewer than ``minimumBytes`` bytes; the
    ///   message names the file.
    public init(contentsOfFile path: String) throws(ReplicationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidSecret("cannot read the secret file \(path.debugDescription)")
        }
        var bytes = [UInt8](data)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        do {
            try self.init(bytes: bytes)
        } catch {
            throw .invalidSecret("secret file \(path.debugDescription): \(error.message)")
        }
    }
}
