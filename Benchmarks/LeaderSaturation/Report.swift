import Foundation
import Histogram

/// The figures of a whole run, as the table, the target checks and the JSON file show them.
struct Report {
    var ceiling: CompressionCeiling
    var results: [ScenarioResult]
    var settings: RunSettings

    private var healthy2: ScenarioResult? { result("healthy-2") }

    func result(_ name: String) -> ScenarioResult? { results.first { $0.scenario.name == name } }

    /// Payload throughput relative to healthy-2's (nil without healthy-2).
    func ratioToHealthy2(_ result: ScenarioResult) -> Double? {
        guard let healthy2, healthy2.payloadBytesPerSecond > 0 else { return nil }
        return result.payloadBytesPerSecond / healthy2.payloadBytesPerSecond
    }

    func ratioToCeiling(_ result: ScenarioResult) -> Double { result.payloadBytesPerSecond / ceiling.bytesPerSecond }

    static func microseconds(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    static func maxMicroseconds(_ histogram: Histogram<UInt64>) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000
    }

    // MARK: Table

    /// The results as a Markdown table with units in every header (MB = 10^6 bytes). A
    /// scenario that evicted a healthy follower reads FAILED in the result column.
    func table() -> String {
        let headers = [
            "scenario", "result", "records/s", "payload MB/s", "wire MB/s", "compression (x)",
            "append p50 (µs)", "append p99 (µs)", "append p99.9 (µs)", "append max (µs)",
            "confirm p50 (µs)", "confirm p99 (µs)", "evictions (count)", "time to evict (s)",
            "max lag (MB)", "max lag (s)", "peak RSS (MiB)", "CPU (s/GB)", "vs healthy-2 (%)", "vs ceiling (%)",
            "CPU per follower (s/GB)", "follower flushes/s", "healthy evictions (count)",
        ]
        var rows: [[String]] = []
        for result in results {
            let append = result.appendLatency
            rows.append([
                result.scenario.name,
                result.failureReason == nil ? "ok" : "FAILED",
                Self.grouped(result.recordsPerSecond),
                String(format: "%.1f", result.payloadBytesPerSecond / 1e6),
                String(format: "%.1f", result.wireBytesPerSecond / 1e6),
                String(format: "%.2f", result.compressionRatio),
                String(format: "%.1f", Self.microseconds(append, 50)),
                String(format: "%.1f", Self.microseconds(append, 99)),
                String(format: "%.0f", Self.microseconds(append, 99.9)),
                String(format: "%.0f", Self.maxMicroseconds(append)),
                result.confirmLatency.map { String(format: "%.0f", Self.microseconds($0, 50)) } ?? "-",
                result.confirmLatency.map { String(format: "%.0f", Self.microseconds($0, 99)) } ?? "-",
                "\(result.evictions)",
                result.secondsToEvict.map { String(format: "%.2f", $0) } ?? "-",
                String(format: "%.1f", Double(result.maxLagBytes) / 1e6),
                String(format: "%.2f", result.maxLagSeconds),
                String(format: "%.0f", Double(result.peakResidentBytes) / 1_048_576),
                String(format: "%.1f", result.cpuSecondsPerGB),
                ratioToHealthy2(result).map { String(format: "%.0f", $0 * 100) } ?? "-",
                String(format: "%.1f", ratioToCeiling(result) * 100),
                result.followerCPUSecondsPerGB.map { String(format: "%.1f", $0) } ?? "-",
                result.followerFlushesPerSecond.map { String(format: "%.0f", $0) } ?? "-",
                "\(result.healthyEvictions.count)",
            ])
        }
        return Self.markdown(headers: headers, rows: rows, rightAligned: Set(2..<headers.count))
    }

    /// One line per failed scenario, with its reason (none when every scenario passed).
    func failures() -> [String] {
        results.compactMap { result in result.failureReason.map { "FAILED \(result.scenario.name): \($0)" } }
    }

    /// What happened in each scenario besides the rates: faults, evictions, throttling, errors.
    func eventsTable() -> String {
        let headers = [
            "scenario", "setup", "fault at (s)", "evictions by reason", "throttled (% of samples)",
            "refused writes (count)", "failed confirms (count)", "steady wire MB/s (throttled part, from s)", "cap MB/s",
            "leader CPU (cores)", "followers CPU (cores)", "RSS before the leader (MiB)",
            "files appended (count)", "files created before the load (s)", "leader fds (max)", "follower fds (max)", "leader RSS (MiB, min-max)", "follower RSS (MiB, max)",
            "max queue (MB)",
        ]
        var rows: [[String]] = []
        for result in results {
            let reasons = result.evictionsByReason.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let events: [String] = [
                result.scenario.name, result.scenario.summary,
                result.faultSeconds.map { String(format: "%.2f", $0) } ?? "-",
                reasons.isEmpty ? "none" : reasons,
                String(format: "%.0f", Double(result.throttledSamples) / Double(max(1, result.samples.count)) * 100),
                "\(result.refusedWrites)",
                result.confirmLatency == nil ? "-" : "\(result.confirmsFailed) (+\(result.unconfirmedAtEnd) unconfirmed at the end)",
                result.steadyWireBytesPerSecond.map { String(format: "%.2f (%.1f)", $0 / 1e6, result.steadyWindowStartSeconds ?? 0) } ?? "-",
                result.capBytesPerSecond.map { String(format: "%.2f", Double($0) / 1e6) } ?? "-",
                String(format: "%.2f", result.leaderCores),
                String(format: "%.2f", result.followerCores),
                String(format: "%.0f", Double(result.residentBytesAtStart) / 1_048_576),
                "\(result.filesAppended)",
                result.secondsToCreateFiles.map { String(format: "%.1f", $0) } ?? "-",
            ]
            rows.append(events + Self.resourceCells(ResourceSummary(samples: result.samples, from: 0)))
        }
        return Self.markdown(headers: headers, rows: rows, rightAligned: Set([2, 4, 5, 7, 8] + Array(9..<headers.count)))
    }

    /// Peak descriptors, RSS and queue depth over the whole load, as the events table shows them.
    private static func resourceCells(_ whole: ResourceSummary) -> [String] {
        func mebibytes(_ bytes: Int) -> String { String(format: "%.0f", Double(bytes) / 1_048_576) }
        return [
            whole.leaderDescriptors.map { "\($0.max)" } ?? "-",
            whole.followerDescriptors.map { "\($0.max)" } ?? "-",
            whole.leaderResidentBytes.map { "\(mebibytes($0.min))-\(mebibytes($0.max))" } ?? "-",
            whole.followerResidentBytes.map { mebibytes($0.max) } ?? "-",
            whole.maxQueuedBytes.map { String(format: "%.1f", Double($0) / 1e6) } ?? "-",
        ]
    }

    // MARK: Targets

    struct TargetCheck {
        var met: Bool
        var text: String
    }

    /// The benchmark's targets (Docs/Performance.md) that this run's scenarios can decide.
    func targetChecks() -> [TargetCheck] {
        var checks: [TargetCheck] = []
        func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
        if let healthy2 {
            let ratio = ratioToCeiling(healthy2)
            checks.append(TargetCheck(met: ratio >= 0.40, text:
                "healthy-2 payload \(Self.megabytes(healthy2.payloadBytesPerSecond)) MB/s = \(percent(ratio)) of the LZ4 one-core ceiling \(Self.megabytes(ceiling.bytesPerSecond)) MB/s (target >= 40%)"))
            if let tls = result("healthy-2-tls"), let ratio = ratioToHealthy2(tls) {
                checks.append(TargetCheck(met: ratio >= 0.80, text:
                    "healthy-2-tls payload \(Self.megabytes(tls.payloadBytesPerSecond)) MB/s = \(percent(ratio)) of healthy-2's \(Self.megabytes(healthy2.payloadBytesPerSecond)) MB/s over mutual TLS (target >= 80%)"))
            }
            for name in ["blackhole-1-of-2", "frozen-1-of-2"] {
                guard let faulty = result(name), let ratio = ratioToHealthy2(faulty) else { continue }
                checks.append(TargetCheck(met: ratio >= 0.90, text: "\(name) payload throughput \(percent(ratio)) of healthy-2's (target >= 90%)"))
                let p99 = Self.microseconds(faulty.appendLatency, 99)
                let healthyP99 = Self.microseconds(healthy2.appendLatency, 99)
                checks.append(TargetCheck(met: p99 <= 2 * healthyP99, text: "\(name) append p99 "
                    + String(format: "%.1f µs = %.2fx healthy-2's %.1f µs (target <= 2x)", p99, p99 / max(healthyP99, 0.001), healthyP99)))
            }
        }
        if let healthy1 = result("healthy-1"), let healthy4 = result("healthy-4") {
            let ratio = healthy4.payloadBytesPerSecond / healthy1.payloadBytesPerSecond
            checks.append(TargetCheck(met: ratio >= 0.80, text:
                "healthy-4 payload \(Self.megabytes(healthy4.payloadBytesPerSecond)) MB/s = \(percent(ratio)) of healthy-1's \(Self.megabytes(healthy1.payloadBytesPerSecond)) MB/s (target >= 80%)"))
        }
        if let healthy1 = result("healthy-1"), let healthy8 = result("healthy-8"), healthy1.cpuSecondsPerGB > 0 {
            let ratio = healthy8.cpuSecondsPerGB / healthy1.cpuSecondsPerGB
            checks.append(TargetCheck(met: ratio <= 1.3, text: String(
                format: "healthy-8 leader CPU %.1f s/GB = %.2fx healthy-1's %.1f s/GB (target <= 1.3x: a batch is compressed once for every follower)",
                healthy8.cpuSecondsPerGB, ratio, healthy1.cpuSecondsPerGB)))
        }
        if let blackhole = result("blackhole-1-of-2") {
            let bound = settings.queueBytes + settings.backlogBytes + 64 << 20
            checks.append(TargetCheck(met: blackhole.peakResidentBytes <= bound, text: String(
                format: "blackhole-1-of-2 leader peak RSS %.0f MiB (bound: queue %d MiB + backlog %d MiB + 64 MiB = %d MiB)",
                Double(blackhole.peakResidentBytes) / 1_048_576, settings.queueBytes >> 20, settings.backlogBytes >> 20, bound >> 20)))
        }
        if let minISR = result("min-isr-2-of-2-slow"), let cap = minISR.capBytesPerSecond, let steady = minISR.steadyWireBytesPerSecond {
            let deviation = steady / Double(cap) - 1
            checks.append(TargetCheck(met: abs(deviation) <= 0.15, text: String(
                format: "min-isr-2-of-2-slow producers at %.2f MB/s on the wire while throttled (from %.1f s to the end), %+.1f%% from the slow follower's cap of %.2f MB/s (target within 15%%; whole run %.2f MB/s, queue fill included)",
                steady / 1e6, minISR.steadyWindowStartSeconds ?? 0, deviation * 100, Double(cap) / 1e6, minISR.wireBytesPerSecond / 1e6)))
            let errors = minISR.refusedWrites + minISR.confirmsFailed + minISR.notEnoughReplicasErrors
            checks.append(TargetCheck(met: errors == 0 && minISR.evictions == 0, text:
                "min-isr-2-of-2-slow: \(minISR.refusedWrites) refused writes, \(minISR.confirmsFailed) failed confirms, leader notEnoughReplicasErrors \(minISR.notEnoughReplicasErrors), \(minISR.evictions) evictions (target: none)"))
        }
        return checks
    }

    // MARK: Formatting

    static func megabytes(_ bytes: Double) -> String { String(format: "%.1f", bytes / 1e6) }

    static func grouped(_ value: Double) -> String {
        let digits = String(Int(value.rounded()))
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0, index % 3 == 0, character != "-" { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }

    static func markdown(headers: [String], rows: [[String]], rightAligned: Set<Int>) -> String {
        let widths = headers.indices.map { column in ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? pad + cell : cell + pad
            }.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.enumerated().map { column, width in
            rightAligned.contains(column) ? String(repeating: "-", count: width + 1) + ":" : String(repeating: "-", count: width + 2)
        }.joined(separator: "|") + "|"
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}
