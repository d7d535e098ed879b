import NIOCore

/// TCP keepalive on every replication socket: defence in depth under the heartbeats, for peers
/// that vanish without a FIN or RST (Docs/Semantics.md, "Liveness").
enum TCPKeepalive {
    static func configure(_ channel: any Channel) throws {
        let options = channel.syncOptions!
        try options.setOption(.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
        try options.setOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 4)), value: 10)  // TCP_KEEPIDLE s
        try options.setOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 5)), value: 3)  // TCP_KEEPINTVL s
        try options.setOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 6)), value: 3)  // TCP_KEEPCNT
        #endif
    }
}
