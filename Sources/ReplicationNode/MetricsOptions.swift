import ArgumentParser
import CoreMetrics
import Logging
import Prometheus

/// `--metrics HOST:PORT`, shared by both roles: where to serve `GET /metrics` and `GET /health`.
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics"), help: ArgumentHelp("Serve GET /metrics (Prometheus text format) and GET /health here (metrics).", valueName: "host:port"))
    var address: String?

    /// Latency buckets from 250 µs to 10 s: a group commit or a confirm on a fast disk takes
    /// well under the 5 ms where swift-prometheus's default buckets start.
    static let durationBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    /// Bootstraps swift-metrics with a Prometheus registry and returns the endpoint to run, or
    /// nil without a `metrics` address. Call once, before the leader or follower is made: their
    /// metrics are created with them.
    static func makeEndpoint(address hostPort: HostPort?, health: HealthSource, logger: Logger) -> MetricsEndpoint? {
        guard let hostPort else { return nil }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        MetricsSystem.bootstrap(factory)
        return MetricsEndpoint(address: hostPort, registry: registry, health: health, logger: logger)
    }
}
