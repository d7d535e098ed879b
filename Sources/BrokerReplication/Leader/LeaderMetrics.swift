import CoreMetrics
import Synchronization

/// The leader's metrics through swift-metrics; every name is listed in Docs/Operations.md.
///
/// Counters move when their event happens (never per record); gauges are set from a status
/// snapshot every `metricsInterval`. Per-follower metrics carry the dimension `follower`.
final class LeaderMetrics: Sendable {
    private let factory: any MetricsFactory
    private let isrSize: Gauge
    private let throttledProducers: Gauge
    private let compressionRatio: Gauge
    private let backlogBytes: Gauge
    private let lastLSN: Gauge
    private let confirmLatency: CoreMetrics.Timer
    private let notEnoughReplicas: Counter
    private let isrShrinks: Counter
    private let isrExpands: Counter
    private let followers = Mutex<[String: FollowerMetrics]>([:])
    private let evictions = Mutex<[String: Counter]>([:])
    private let reportedNotEnoughReplicas = Mutex(0)

    private struct FollowerMetrics: Sendable {
        let connected: Gauge
        let lagBytes: Gauge
        let lagLSNs: Gauge
        let lagSeconds: Gauge
        let queueBytes: Gauge
        let queueFrames: Gauge
        let sentBytes: Counter
        let ackedBytes: Counter
        let connections: Counter
        let fullResyncs: Counter
        let partialResyncs: Counter

        init(nodeID: String, factory: any MetricsFactory) {
            let follower = [("follower", nodeID)]
            connected = Gauge(label: "brpl_follower_connected", dimensions: follower, factory: factory)
            lagBytes = Gauge(label: "brpl_follower_lag_bytes", dimensions: follower, factory: factory)
            lagLSNs = Gauge(label: "brpl_follower_lag_lsns", dimensions: follower, factory: factory)
            lagSeconds = Gauge(label: "brpl_follower_lag_seconds", dimensions: follower, factory: factory)
            queueBytes = Gauge(label: "brpl_follower_queue_bytes", dimensions: follower, factory: factory)
            queueFrames = Gauge(label: "brpl_follower_queue_frames", dimensions: follower, factory: factory)
            sentBytes = Counter(label: "brpl_follower_sent_bytes_total", dimensions: follower, factory: factory)
            ackedBytes = Counter(label: "brpl_follower_acked_bytes_total", dimensions: follower, factory: factory)
            connections = Counter(label: "brpl_follower_connections_total", dimensions: follower, factory: factory)
            fullResyncs = Counter(label: "brpl_follower_resyncs_total", dimensions: follower + [("kind", "full")], factory: factory)
            partialResyncs = Counter(label: "brpl_follower_resyncs_total", dimensions: follower + [("kind", "partial")], factory: factory)
        }
    }

    /// - Parameter policy: its least in-sync set size is published once, as `brpl_isr_min_size`.
    init(factory: any MetricsFactory, policy: ReplicationPolicy) {
        self.factory = factory
        isrSize = Gauge(label: "brpl_isr_size", factory: factory)
        throttledProducers = Gauge(label: "brpl_throttled_producers", factory: factory)
        compressionRatio = Gauge(label: "brpl_compression_ratio", factory: factory)
        backlogBytes = Gauge(label: "brpl_backlog_bytes", factory: factory)
        lastLSN = Gauge(label: "brpl_last_lsn", factory: factory)
        confirmLatency = CoreMetrics.Timer(label: "brpl_confirm_latency_seconds", factory: factory)
        notEnoughReplicas = Counter(label: "brpl_not_enough_replicas_total", factory: factory)
        isrShrinks = Counter(label: "brpl_isr_shrinks_total", factory: factory)
        isrExpands = Counter(label: "brpl_isr_expands_total", factory: factory)
        // Evict mode confirms with whoever is in sync, so it needs no member at all.
        let minimum = if case .minInSyncReplicas(let count) = policy { count } else { 0 }
        Gauge(label: "brpl_isr_min_size", factory: factory).record(minimum)
    }

    /// The metrics of one follower, made on first use (outside the lock: a backend's factory
    /// may take locks of its own).
    private func follower(_ nodeID: String) -> FollowerMetrics {
        if let known = followers.withLock({ $0[nodeID] }) { return known }
        let made = FollowerMetrics(nodeID: nodeID, factory: factory)
        return followers.withLock { followers in
            if let raced = followers[nodeID] { return raced }
            followers[nodeID] = made
            return made
        }
    }

    func connected(_ nodeID: String, fullSync: Bool) {
        let metrics = follower(nodeID)
        metrics.connections.increment()
        (fullSync ? metrics.fullResyncs : metrics.partialResyncs).increment()
    }

    func sent(_ nodeID: String, bytes: Int) {
        follower(nodeID).sentBytes.increment(by: bytes)
    }

    func acked(_ nodeID: String, bytes: Int) {
        guard bytes > 0 else { return }
        follower(nodeID).ackedBytes.increment(by: bytes)
    }

    func evicted(_ nodeID: String, reason: EvictionReason) {
        let key = nodeID + "\u{0}" + reason.rawValue
        let counter = evictions.withLock { $0[key] } ?? {
            let made = Counter(label: "brpl_evictions_total", dimensions: [("follower", nodeID), ("reason", reason.rawValue)], factory: factory)
            return evictions.withLock { counters in
                if let raced = counters[key] { return raced }
                counters[key] = made
                return made
            }
        }()
        counter.increment()
    }

    /// A persisted change of the in-sync set: a shrink when members left, an expand when
    /// members joined (both when one replaced another).
    func inSyncChanged(joined: [String], left: [String]) {
        if !left.isEmpty { isrShrinks.increment() }
        if !joined.isEmpty { isrExpands.increment() }
    }

    func confirmed(after latency: Duration) {
        confirmLatency.recordNanoseconds(latency.components.seconds * 1_000_000_000 + latency.components.attoseconds / 1_000_000_000)
    }

    /// Sets every gauge from a status snapshot.
    func sample(_ status: LeaderStatus) {
        isrSize.record(status.isr.count)
        throttledProducers.record(status.throttledProducers)
        backlogBytes.record(status.backlogBytes)
        lastLSN.record(Int64(clamping: status.lastLSN))
        if status.wireBytes > 0 { compressionRatio.record(Double(status.payloadBytes) / Double(status.wireBytes)) }
        let newErrors = reportedNotEnoughReplicas.withLock { reported in
            defer { reported = status.notEnoughReplicasErrors }
            return status.notEnoughReplicasErrors - reported
        }
        if newErrors > 0 { notEnoughReplicas.increment(by: newErrors) }
        var present: Set<String> = []
        for entry in status.followers {
            present.insert(entry.nodeID)
            let metrics = follower(entry.nodeID)
            metrics.connected.record(1)
            metrics.lagBytes.record(entry.lagBytes)
            metrics.lagLSNs.record(Int64(clamping: entry.lagLSNs))
            metrics.lagSeconds.record(entry.lagSeconds)
            metrics.queueBytes.record(entry.queuedBytes)
            metrics.queueFrames.record(entry.queuedFrames)
        }
        // A follower that is gone keeps its last lag (it is still that far behind) but holds
        // no queue.
        for (nodeID, metrics) in followers.withLock({ $0 }) where !present.contains(nodeID) {
            metrics.connected.record(0)
            metrics.queueBytes.record(0)
            metrics.queueFrames.record(0)
        }
    }
}
