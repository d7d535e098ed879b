import BrokerReplication
import Foundation
import Histogram

/// One point of the throughput timeline, taken every 250 ms while the load runs.
struct Sample: Sendable {
    /// Seconds since the load started.
    var seconds: Double
    /// Records per second since the previous sample.
    var recordsPerSecond: Double
    /// Cumulative payload and wire bytes the leader has sealed.
    var payloadBytes: Int
    var wireBytes: Int
    /// Producers held back by the min-ISR throttle at that moment.
    var throttledProducers: Int
    /// The largest lag of any follower at that moment.
    var maxLagBytes: Int
    var maxLagSeconds: Double
    var liveFollowers: Int
    /// Memory, descriptors and queues of the leader and follower processes.
    var resources: ResourceSample
}

/// An eviction, placed on the run's timeline.
struct EvictionMark: Sendable, Equatable {
    var seconds: Double
    var nodeID: String
    var reason: EvictionReason
}

/// Everything one scenario measured.
struct ScenarioResult: Sendable {
    var scenario: Scenario
    /// Seconds from the load's start until every producer stopped appending.
    var loadSeconds: Double
    var records: Int
    var payloadBytes: Int
    var wireBytes: Int
    var appendLatency: Histogram<UInt64>
    var confirmLatency: Histogram<UInt64>?
    var confirmsFailed: Int
    var unconfirmedAtEnd: Int
    var refusedWrites: Int
    var notEnoughReplicasErrors: Int
    var evictions: Int
    var evictionsByReason: [EvictionReason: Int]
    var secondsToEvict: Double?
    var maxLagBytes: Int
    var maxLagSeconds: Double
    var peakResidentBytes: Int
    /// The process's resident set right after the reset, before the scenario's leader exists.
    var residentBytesAtStart: Int
    var cpuSeconds: Double
    /// CPU seconds each follower process used during the load.
    var followerCPUSeconds: [Double]
    /// Group commits (one device flush each) of all the followers together during the load;
    /// nil without followers or when a status file could not be read.
    var followerFlushes: Int?
    var samples: [Sample]
    var evictionMarks: [EvictionMark]
    var faultSeconds: Double?
    var capBytesPerSecond: Int?
    var segmentsDeleted: Int
    /// Segment files the producers appended to (each counted once).
    var filesAppended: Int
    /// With `--files`: seconds to create every queue's first segment on the leader and the
    /// followers, before the load.
    var secondsToCreateFiles: Double?

    var recordsPerSecond: Double { Double(records) / loadSeconds }
    var payloadBytesPerSecond: Double { Double(payloadBytes) / loadSeconds }
    var wireBytesPerSecond: Double { Double(wireBytes) / loadSeconds }
    var compressionRatio: Double { wireBytes > 0 ? Double(payloadBytes) / Double(wireBytes) : 0 }
    var cpuSecondsPerGB: Double { payloadBytes > 0 ? cpuSeconds / (Double(payloadBytes) / 1e9) : 0 }
    /// CPU seconds of one follower process (the mean over the followers) per GB of payload,
    /// over the same window as the leader's: each follower applies every byte once, so this
    /// compares with the leader's own figure. Nil without followers.
    var followerCPUSecondsPerGB: Double? {
        guard !followerCPUSeconds.isEmpty else { return nil }
        let perFollower = followerCPUSeconds.reduce(0, +) / Double(followerCPUSeconds.count)
        return payloadBytes > 0 ? perFollower / (Double(payloadBytes) / 1e9) : 0
    }
    var followerFlushesPerSecond: Double? { followerFlushes.map { Double($0) / loadSeconds } }

    /// Evictions of the followers the scenario left alone (every one but the faulty one): a
    /// healthy follower must never be evicted.
    var healthyEvictions: [EvictionMark] { evictionMarks.filter { $0.nodeID != scenario.faultyNodeID } }
    /// Why the scenario failed, or nil when it did not.
    var failureReason: String? {
        let evicted = healthyEvictions
        guard !evicted.isEmpty else { return nil }
        let list = evicted.map { "\($0.nodeID) \($0.reason) at " + String(format: "%.2f s", $0.seconds) }.joined(separator: ", ")
        return "\(evicted.count) eviction(s) of healthy followers: \(list)"
    }
    /// Cores the leader process and the followers kept busy on average during the load.
    var leaderCores: Double { cpuSeconds / loadSeconds }
    var followerCores: Double { followerCPUSeconds.reduce(0, +) / loadSeconds }
    var throttledSamples: Int { samples.filter { $0.throttledProducers > 0 }.count }

    /// Wire bytes per second from the first sample with a throttled producer to the end (or
    /// over the second half, when no producer was throttled): under min-ISR, once the slow
    /// follower's queue has filled, this is the pace the throttle holds producers to.
    var steadyWireBytesPerSecond: Double? {
        let start = samples.first(where: { $0.throttledProducers > 0 }) ?? samples.first(where: { $0.seconds >= loadSeconds / 2 })
        guard let last = samples.last, let start, last.seconds > start.seconds else { return nil }
        return Double(last.wireBytes - start.wireBytes) / (last.seconds - start.seconds)
    }

    /// When the steady window of ``steadyWireBytesPerSecond`` starts, in seconds.
    var steadyWindowStartSeconds: Double? {
        (samples.first(where: { $0.throttledProducers > 0 }) ?? samples.first(where: { $0.seconds >= loadSeconds / 2 }))?.seconds
    }
}
