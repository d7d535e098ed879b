import NIOCore

/// Every connection the leader accepted and has not closed, so that stopping can close the
/// ones still in their handshake; and the cap on those in their handshake.
///
/// A peer needs no secret to open a connection, so without the cap anyone who can reach the
/// port could make the leader hold a socket, a task and a handshake timer per connection
/// until `handshakeTimeout`. Followers that finished the handshake do not count.
struct OpenConnections {
    enum Admission: Equatable {
        case tracked
        /// The leader is stopping: close without serving.
        case stopping
        /// `maximumHandshaking` connections are in their handshake already: close this one.
        case handshakesFull
    }

    let maximumHandshaking: Int
    private(set) var isStopping = false
    private(set) var channels: [ObjectIdentifier: any Channel] = [:]
    /// The tracked connections that have not finished the handshake.
    private(set) var handshaking: Set<ObjectIdentifier> = []

    init(maximumHandshaking: Int) {
        self.maximumHandshaking = maximumHandshaking
    }

    mutating func accept(_ channel: any Channel) -> Admission {
        if isStopping { return .stopping }
        if handshaking.count >= maximumHandshaking { return .handshakesFull }
        let id = ObjectIdentifier(channel)
        channels[id] = channel
        handshaking.insert(id)
        return .tracked
    }

    mutating func finishedHandshake(_ channel: any Channel) {
        handshaking.remove(ObjectIdentifier(channel))
    }

    mutating func remove(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels[id] = nil
        handshaking.remove(id)
    }

    /// Stops accepting; returns every open connection, for the caller to close.
    mutating func stop() -> [any Channel] {
        isStopping = true
        defer { channels = [:]; handshaking = [] }
        return Array(channels.values)
    }
}
