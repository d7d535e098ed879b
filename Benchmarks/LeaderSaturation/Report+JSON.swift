import Foundation

extension Report {
    /// `{"ceilingBytesPerSecond": N, "appendBatch": N, "files": N, "rateBytesPerSecond": N,
    /// "scenarios": [...]}` (the schema in Docs/Performance.md) with the follower figures, the
    /// failure flag and the resources added.
    func json() throws -> Data {
        let windowStart = settings.resourceWindowStartSeconds
        let document = JSONReport(
            ceilingBytesPerSecond: ceiling.bytesPerSecond,
            appendBatch: settings.appendBatch,
            files: settings.layout.files,
            rateBytesPerSecond: settings.rateBytesPerSecond,
            scenarios: results.map { result in
                JSONReport.Scenario(
                    name: result.scenario.name,
                    recordsPerSecond: result.recordsPerSecond,
                    payloadBytesPerSecond: result.payloadBytesPerSecond,
                    wireBytesPerSecond: result.wireBytesPerSecond,
                    compressionRatio: result.compressionRatio,
                    appendLatencyMicroseconds: .init(
                        p50: Self.microseconds(result.appendLatency, 50), p99: Self.microseconds(result.appendLatency, 99),
                        p999: Self.microseconds(result.appendLatency, 99.9), max: Self.maxMicroseconds(result.appendLatency)),
                    confirmLatencyMicroseconds: result.confirmLatency.map { .init(p50: Self.microseconds($0, 50), p99: Self.microseconds($0, 99)) },
                    evictions: result.evictions,
                    secondsToEvict: result.secondsToEvict,
                    leaderPeakRSSBytes: result.peakResidentBytes,
                    leaderCPUSecondsPerGB: result.cpuSecondsPerGB,
                    ratioToHealthy2: ratioToHealthy2(result),
                    ratioToCeiling: ratioToCeiling(result),
                    followerCPUSecondsPerGB: result.followerCPUSecondsPerGB,
                    followerFlushesPerSecond: result.followerFlushesPerSecond,
                    healthyEvictions: result.healthyEvictions.count,
                    failed: result.failureReason != nil,
                    failureReason: result.failureReason,
                    filesAppended: result.filesAppended,
                    secondsToCreateFiles: result.secondsToCreateFiles,
                    resources: ResourceSummary(samples: result.samples, from: windowStart),
                    resourceSeries: ResourceSeries(samples: result.samples, followers: result.scenario.followers)
                )
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(document)
    }
}

/// The JSON file's shape. Optional values are written as `null`, never left out.
struct JSONReport: Encodable {
    struct AppendLatency: Encodable {
        var p50: Double
        var p99: Double
        var p999: Double
        var max: Double
    }

    struct ConfirmLatency: Encodable {
        var p50: Double
        var p99: Double
    }

    struct Scenario: Encodable {
        var name: String
        var recordsPerSecond: Double
        var payloadBytesPerSecond: Double
        var wireBytesPerSecond: Double
        var compressionRatio: Double
        var appendLatencyMicroseconds: AppendLatency
        var confirmLatencyMicroseconds: ConfirmLatency?
        var evictions: Int
        var secondsToEvict: Double?
        var leaderPeakRSSBytes: Int
        var leaderCPUSecondsPerGB: Double
        var ratioToHealthy2: Double?
        var ratioToCeiling: Double
        var followerCPUSecondsPerGB: Double?
        var followerFlushesPerSecond: Double?
        /// Evictions of followers the scenario did not make slow, black-holed or frozen.
        var healthyEvictions: Int
        /// True when a healthy follower was evicted; `failureReason` says which, why and when.
        var failed: Bool
        var failureReason: String?
        /// Segment files the producers appended to.
        var filesAppended: Int
        /// With `--files`: seconds to create every queue's first file everywhere, before the load.
        var secondsToCreateFiles: Double?
        /// Least and most RSS, descriptors and queue depth after the warm-up (`--warm-up`).
        var resources: ResourceSummary
        /// Every sample's resources, from the start of the load.
        var resourceSeries: ResourceSeries

        private enum CodingKeys: String, CodingKey {
            case name, recordsPerSecond, payloadBytesPerSecond, wireBytesPerSecond, compressionRatio, appendLatencyMicroseconds
            case confirmLatencyMicroseconds, evictions, secondsToEvict, leaderPeakRSSBytes, leaderCPUSecondsPerGB, ratioToHealthy2, ratioToCeiling
            case followerCPUSecondsPerGB, followerFlushesPerSecond, healthyEvictions, failed, failureReason
            case filesAppended, secondsToCreateFiles, resources, resourceSeries
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(recordsPerSecond, forKey: .recordsPerSecond)
            try container.encode(payloadBytesPerSecond, forKey: .payloadBytesPerSecond)
            try container.encode(wireBytesPerSecond, forKey: .wireBytesPerSecond)
            try container.encode(compressionRatio, forKey: .compressionRatio)
            try container.encode(appendLatencyMicroseconds, forKey: .appendLatencyMicroseconds)
            try container.encode(confirmLatencyMicroseconds, forKey: .confirmLatencyMicroseconds)
            try container.encode(evictions, forKey: .evictions)
            try container.encode(secondsToEvict, forKey: .secondsToEvict)
            try container.encode(leaderPeakRSSBytes, forKey: .leaderPeakRSSBytes)
            try container.encode(leaderCPUSecondsPerGB, forKey: .leaderCPUSecondsPerGB)
            try container.encode(ratioToHealthy2, forKey: .ratioToHealthy2)
            try container.encode(ratioToCeiling, forKey: .ratioToCeiling)
            try container.encode(followerCPUSecondsPerGB, forKey: .followerCPUSecondsPerGB)
            try container.encode(followerFlushesPerSecond, forKey: .followerFlushesPerSecond)
            try container.encode(healthyEvictions, forKey: .healthyEvictions)
            try container.encode(failed, forKey: .failed)
            try container.encode(failureReason, forKey: .failureReason)
            try container.encode(filesAppended, forKey: .filesAppended)
            try container.encode(secondsToCreateFiles, forKey: .secondsToCreateFiles)
            try container.encode(resources, forKey: .resources)
            try container.encode(resourceSeries, forKey: .resourceSeries)
        }
    }

    var ceilingBytesPerSecond: Double
    /// Records per append call (`--append-batch`).
    var appendBatch: Int
    /// `--files`; null when each producer appends to its own segment files.
    var files: Int?
    /// `--rate`, in record bytes per second of all producers; null when they run flat out.
    var rateBytesPerSecond: Int?
    var scenarios: [Scenario]

    private enum CodingKeys: String, CodingKey {
        case ceilingBytesPerSecond, appendBatch, files, rateBytesPerSecond, scenarios
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ceilingBytesPerSecond, forKey: .ceilingBytesPerSecond)
        try container.encode(appendBatch, forKey: .appendBatch)
        try container.encode(files, forKey: .files)
        try container.encode(rateBytesPerSecond, forKey: .rateBytesPerSecond)
        try container.encode(scenarios, forKey: .scenarios)
    }
}
