import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `--metrics HOST:PORT`: `GET /metrics` in the Prometheus text format and `GET /health`, as a
/// `Service` in the node's group, so it stops on SIGTERM with the rest.
///
/// Both answers are a synchronous read (the registry, a status snapshot), so one small channel
/// handler per connection answers on its event loop; no request has a body worth reading.
struct MetricsEndpoint: Service {
    let address: HostPort
    let registry: PrometheusCollectorRegistry
    let health: HealthSource
    let logger: Logger

    /// One answer: status, content type and body.
    struct Response: Equatable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: String
    }

    /// `services` with `endpoint` first, so that a graceful shutdown, which stops services in
    /// reverse order, stops it last: the drain stays observable.
    static func first(
        _ endpoint: MetricsEndpoint?, _ services: [ServiceGroupConfiguration.ServiceConfiguration]
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let endpoint else { return services }
        return [.init(service: endpoint, serviceName: "metrics")] + services
    }

    /// What a request gets: the routes, with no socket involved.
    static func response(method: HTTPMethod, uri: String, registry: PrometheusCollectorRegistry, health: NodeHealth) -> Response {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        switch (method, path) {
        case (.GET, "/metrics"):
            return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToString())
        case (.GET, "/health"):
            return Response(status: health.isHealthy ? .ok : .serviceUnavailable, contentType: "application/json", body: health.json)
        case (_, "/metrics"), (_, "/health"):
            return Response(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: "\(path) answers GET only\n")
        default:
            return Response(status: .notFound, contentType: "text/plain; charset=utf-8", body: "no \(path) here: try GET /metrics or GET /health\n")
        }
    }

    func run() async throws {
        let registry = self.registry
        let health = self.health
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(Handler { method, uri in
                            Self.response(method: method, uri: uri, registry: registry, health: health.current())
                        })
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            throw ListenError(description: "cannot serve metrics on \(address) (--metrics): \(error)")
        }
        logger.info("metrics and health served", metadata: ["address": "\(server.localAddress?.description ?? "\(address)")"])
        // Closing the listener ends the service; connections answer their one request and close.
        try? await withTaskCancellationOrGracefulShutdownHandler {
            try await server.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            server.close(promise: nil)
        }
    }

    /// Answers each request once its head and body have arrived; the body is ignored.
    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let respond: @Sendable (HTTPMethod, String) -> Response
        private var head: HTTPRequestHead?

        init(_ respond: @escaping @Sendable (HTTPMethod, String) -> Response) {
            self.respond = respond
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let requestHead):
                head = requestHead
            case .body:
                break
            case .end:
                guard let head else { return }
                self.head = nil
                let response = respond(head.method, head.uri)
                var headers = HTTPHeaders([("content-type", response.contentType), ("content-length", "\(response.body.utf8.count)")])
                if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
                let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if !head.isKeepAlive {
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    written.whenComplete { _ in bound.value.close(promise: nil) }
                }
            }
        }
    }
}
