import NIOCore

/// A follower's node id, kept in its data directory (`.brpl/node-id`) so that it is the same
/// node after every restart: the stored in-sync set names it, and so do its metric series.
///
/// The file holds the id as UTF-8 and one newline; an operator may write it by hand. It is
/// created whole (a temporary file, flushed, renamed), so a crash leaves it absent or complete.
struct NodeIdentityFile {
    static let rawPath = DataDirectory.reservedDirectory + "/node-id"
    private static let temporaryPath = rawPath + ".new"

    let directory: DataDirectory

    /// What the file holds: nothing yet, an id, or bytes that are not one.
    enum Stored: Equatable {
        case none
        case nodeID(String)
        case invalid
    }

    func load() throws(StorageError) -> Stored {
        guard let bytes = try read() else { return .none }
        return Self.nodeID(in: bytes).map { .nodeID($0) } ?? .invalid
    }

    /// Stores `nodeID`, durably; the file must not exist yet.
    func store(_ nodeID: String) throws(StorageError) {
        let file = try directory.openFile(rawPath: Self.temporaryPath, create: true, truncate: true)
        let bytes = ByteBuffer(string: nodeID + "\n")
        try bytes.withUnsafeReadableBytes { raw throws(StorageError) in try file.write(raw, at: 0) }
        try file.sync()
        try directory.rename(rawPath: Self.temporaryPath, over: ReplicatedPath(alreadyValidated: Self.rawPath), durable: true)
    }

    private func read() throws(StorageError) -> [UInt8]? {
        guard let file = try directory.openForReading(ReplicatedPath(alreadyValidated: Self.rawPath)) else { return nil }
        // A node id has at most 255 bytes: anything much longer is not one, and is not read whole.
        let size = min(try file.size(), 1024)
        var buffer = ByteBuffer()
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw throws(StorageError) in
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw.prefix(size)), at: 0)
        }
        return Array(buffer.readableBytesView)
    }

    /// The id in a file's bytes: one trailing newline is dropped; the rest must be a valid id.
    static func nodeID(in bytes: [UInt8]) -> String? {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard (1...255).contains(bytes.count), !bytes.contains(UInt8(ascii: "\n")), let id = String(validating: bytes, as: UTF8.self) else { return nil }
        return id
    }
}

extension ReplicationFollowerConfiguration {
    /// The node id stored in `dataDirectory` (`.brpl/node-id`), created on first use.
    ///
    /// A follower that is not given a node id should use this one, so a restart keeps its name:
    /// the leader's stored in-sync set, a promotion's check and the metrics know it by it. A
    /// new id is `follower-` and 12 random hexadecimal digits.
    ///
    /// - Parameter dataDirectory: the follower's data directory; created when missing.
    /// - Returns: the stored id, or the new one now stored.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/storage`` when the
    ///   directory or the file cannot be read or written, and
    ///   ``ReplicationError/Code/invalidConfiguration`` when the file does not hold a node id
    ///   (the message names the file).
    public static func storedNodeID(dataDirectory: String) throws(ReplicationError) -> String {
        let file: NodeIdentityFile
        let stored: NodeIdentityFile.Stored
        do {
            file = NodeIdentityFile(directory: try DataDirectory(path: dataDirectory))
            stored = try file.load()
        } catch {
            throw ReplicationError(error)
        }
        switch stored {
        case .nodeID(let nodeID):
            return nodeID
        case .invalid:
            throw .invalidConfiguration(
                "\(dataDirectory)/\(NodeIdentityFile.rawPath) does not hold a node id (1...255 bytes of UTF-8, then one newline): "
                    + "fix it, delete it to get a new id, or pass the node id"
            )
        case .none:
            var generator = SystemRandomNumberGenerator()
            let digits = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            let nodeID = "follower-" + digits.joined()
            do {
                try file.store(nodeID)
            } catch {
                throw ReplicationError(error)
            }
            return nodeID
        }
    }
}
