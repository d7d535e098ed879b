import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// One whole HTTP request, body included.
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var body: ByteBuffer
}

/// One whole HTTP response.
struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var body: ByteBuffer
    var contentType: String

    init(_ status: HTTPResponseStatus, _ body: String, contentType: String = "text/plain; charset=utf-8") {
        self.status = status
        self.body = ByteBuffer(string: body)
        self.contentType = contentType
    }
}

/// A minimal HTTP/1.1 server on SwiftNIO, as a `Service`: NIOHTTP1 handlers do the protocol,
/// and each connection is a child task that collects a request and awaits `respond`.
///
/// On a graceful shutdown it stops accepting, lets every connection finish the request it is
/// answering, closes it, and returns.
struct HTTPServer: Service {
    /// The largest request body accepted; larger ones get 413.
    static let maximumBodyBytes = 1024 * 1024

    let host: String
    let port: Int
    let logger: Logger
    let respond: @Sendable (HTTPRequest) async -> HTTPResponse

    func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("http listening", metadata: ["address": "\(server.channel.localAddress?.description ?? "\(host):\(port)")"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        logger.info("http stopped")
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var bodyTooLarge = false
                // Ends between requests on a graceful shutdown; a request being answered finishes.
                for try await part in inbound.cancelOnGracefulShutdown() {
                    switch part {
                    case .head(let requestHead):
                        (head, body, bodyTooLarge) = (requestHead, ByteBuffer(), false)
                    case .body(var chunk):
                        bodyTooLarge = bodyTooLarge || body.readableBytes + chunk.readableBytes > Self.maximumBodyBytes
                        if !bodyTooLarge { body.writeBuffer(&chunk) }
                    case .end:
                        guard let head else { continue }
                        let response = bodyTooLarge
                            ? HTTPResponse(.payloadTooLarge, "a message holds at most \(Self.maximumBodyBytes) bytes\n")
                            : await respond(HTTPRequest(method: head.method, uri: head.uri, body: body))
                        var headers = HTTPHeaders([("content-type", response.contentType), ("content-length", "\(response.body.readableBytes)")])
                        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
                        try await outbound.write(contentsOf: [
                            .head(HTTPResponseHead(version: head.version, status: response.status, headers: headers)),
                            .body(.byteBuffer(response.body)), .end(nil),
                        ])
                        if !head.isKeepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("http connection ended", metadata: ["error": "\(error)"])
        }
    }
}
