import ArgumentParser
import CoreMetrics
import Logging
import Prometheus

/// `--metrics HOST:PORT`, shared by both roles: where to serve `GET /metrics` and `GET /health`.
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics"), help: ArgumentHelp("Serve GET /metrics (Prometheus text format) and GET /health here.", valueName: "host:port"))
    var address: String?

    /// Latency buckets from 250 µs to 10 s: a group commit or a confirm on a fast disk takes
    /// well under the 5 ms where swift-prometheus's default buckets start.
    static let durationBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    func validate() throws {
        if let address { _ = try HostPort(parsing: address, flag: "--metrics", ports: 0...65535) }
    }

    /// Bootstraps swift-metrics with a Prometheus registry and returns the endpoint to run, or
    /// nil without `--metrics`. Call once, before the leader or follower is made: their
    /// metrics are created with them.
    func makeEndpoint(health: HealthSource, logger: Logger) throws -> MetricsEndpoint? {
        guard let address else { return nil }
        let hostPort = try HostPort(parsing: address, flag: "--metrics", ports: 0...65535)
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        MetricsSystem.bootstrap(factory)
        return MetricsEndpoint(address: hostPort, registry: registry, health: health, logger: logger)
    }
}
