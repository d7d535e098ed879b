import ArgumentParser
import BrokerReplication
import Foundation
import Logging

/// Drives a leader (in this process) to saturation with healthy, slow, black-holed and frozen
/// follower processes, and reports every scenario against the LZ4 one-core ceiling measured
/// in the same run.
@main
struct LeaderSaturation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader-saturation",
        abstract: "Saturate a replication leader with healthy, slow, black-holed and frozen followers, and report what happened.",
        discussion: """
            The leader, its producers and the fault-injecting proxies run in this process (so \
            the leader's CPU and RSS include the proxies); each follower is a `replication-node \
            follower` process from the same build directory. Everything listens on 127.0.0.1.

            Scenarios: \(Scenario.all.map(\.name).joined(separator: ", ")).

            A scenario in which a healthy follower (one the scenario did not make slow, \
            black-holed or frozen) is evicted is marked FAILED in the table, with the reason \
            below it, and in the JSON ("failed": true, "failureReason"). Failures are in the \
            report only: the exit status is 0 unless the benchmark itself could not run.
            """
    )

    @Option(help: ArgumentHelp("Comma-separated scenarios to run, in order (default: all).", valueName: "a,b,..."))
    var scenarios: String = Scenario.all.map(\.name).joined(separator: ",")

    @Option(help: ArgumentHelp("Seconds of load per scenario.", valueName: "seconds"))
    var duration: Double = 10

    @Option(name: .customLong("record-bytes"), help: ArgumentHelp("Fixed-size records (16, 1024 or 65536, or any size up to 1 MiB) instead of broker-like JSON events of about 150 bytes.", valueName: "bytes"))
    var recordBytes: Int?

    @Option(help: "Concurrent producers, each appending to its own segment files (with --files, to its share of them).")
    var producers: Int = 4

    @Option(help: ArgumentHelp(
        "Spread the load over this many files (1...100000), as a broker with many queues does: producer p appends in turn to files p, p+P, p+2P, ... (P = --producers, at most N), one append call per file per turn. A file past --segment-bytes rolls to a new segment and deletes the one before it, so each queue keeps at most 2 files; paths q<NNNNN>/seg-<k>. Every queue's first file is created (one record) and acked by the followers before the load starts, as a broker's queues exist before its load. Without it each producer appends to its own segment files.",
        valueName: "N"))
    var files: Int?

    @Option(help: ArgumentHelp(
        "Append at this fixed rate, in record bytes per second of all producers together (each paced at rate / --producers), instead of as fast as the leader takes them.",
        valueName: "bytes/s"))
    var rate: Int?

    @Option(name: .customLong("append-batch"), help: ArgumentHelp("Records each producer appends per call: 1 calls append(to:bytes:) per record, more call the batch append(to:contentsOf:).", valueName: "records"))
    var appendBatch: Int = 1

    @Option(help: ArgumentHelp("Write the results as JSON to this file.", valueName: "path"))
    var json: String?

    @Option(help: ArgumentHelp("Draw throughput over time for each scenario as SVG to this file.", valueName: "path.svg"))
    var chart: String?

    @Option(name: .customLong("queue-bytes"), help: ArgumentHelp("The leader's per-follower queue bound.", valueName: "bytes"))
    var queueBytes: Int = 16 << 20

    @Option(name: .customLong("backlog-bytes"), help: ArgumentHelp("The leader's backlog bound.", valueName: "bytes"))
    var backlogBytes: Int = 64 << 20

    @Option(name: .customLong("slow-bytes-per-second"), help: ArgumentHelp("Bandwidth cap (leader to follower) of the slow follower.", valueName: "bytes"))
    var slowBytesPerSecond: Int = 4 << 20

    @Option(name: .customLong("segment-bytes"), help: ArgumentHelp("A queue starts a new segment file after this many bytes: a producer's own queue keeps its newest 8, each --files queue its newest 2.", valueName: "bytes"))
    var segmentBytes: Int = 8 << 20

    @Option(name: .customLong("warm-up"), help: ArgumentHelp("Seconds at the start of each scenario's load that the resource minima and maxima in the JSON leave out (RSS, descriptors, queue depth), at most half of --duration.", valueName: "seconds"))
    var warmUp: Double = 60

    @Flag(help: "Log the leader's info messages (connections, evictions) to stderr.")
    var verbose = false

    @Flag(help: "Print the in-sync set, throttled producers and every follower's queue and lag at each 250 ms sample (stderr).")
    var trace = false

    func validate() throws {
        _ = try selectedScenarios()
        guard duration.isFinite, (1...600).contains(duration) else { throw ValidationError("--duration must be 1...600 seconds") }
        guard (1...64).contains(producers) else { throw ValidationError("--producers must be 1...64") }
        guard (1...4096).contains(appendBatch) else { throw ValidationError("--append-batch must be 1...4096") }
        if let recordBytes, !(1...(1 << 20)).contains(recordBytes) { throw ValidationError("--record-bytes must be 1...1048576") }
        guard (1 << 12...1 << 40).contains(slowBytesPerSecond) else { throw ValidationError("--slow-bytes-per-second must be at least 4096") }
        guard (64 << 10...1 << 40).contains(segmentBytes) else { throw ValidationError("--segment-bytes must be at least 65536") }
        if let files {
            guard (1...100_000).contains(files) else { throw ValidationError("--files must be 1...100000") }
            guard producers <= files else { throw ValidationError("--producers (\(producers)) must be at most --files (\(files)): each producer owns at least one file") }
        }
        if let rate, !(1000...(1 << 40)).contains(rate) { throw ValidationError("--rate must be at least 1000 bytes per second") }
        guard warmUp.isFinite, (0...600).contains(warmUp) else { throw ValidationError("--warm-up must be 0...600 seconds") }
        var leader = ReplicationLeaderConfiguration(dataDirectory: "/nonexistent", clusterID: "c", nodeID: "n")
        leader.queueBytes = queueBytes
        leader.backlogBytes = backlogBytes
        do {
            try leader.validate()
        } catch {
            throw ValidationError("--queue-bytes / --backlog-bytes: \(error)")
        }
    }

    func selectedScenarios() throws -> [Scenario] {
        let names = scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--scenarios names none") }
        return try names.map { name in
            guard let scenario = Scenario.named(name) else {
                throw ValidationError("unknown scenario \(name.debugDescription); known: \(Scenario.all.map(\.name).joined(separator: ", "))")
            }
            return scenario
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let signalSources = ChildProcesses.installHandlers()
        defer {
            ChildProcesses.killAll()
            for source in signalSources { source.cancel() }
        }
        let selected = try selectedScenarios()
        let replicationNode = try Self.replicationNodeBinary()
        let progress = ProgressLine()
        let pool = RecordPool(recordBytes: recordBytes)
        let settings = RunSettings(
            durationSeconds: duration, producers: producers, appendBatch: appendBatch, pool: pool, queueBytes: queueBytes, backlogBytes: backlogBytes,
            slowBytesPerSecond: slowBytesPerSecond, segmentBytes: segmentBytes,
            layout: files.map { .spread(files: $0) } ?? .segmentsPerProducer(keepSegments: 8), rateBytesPerSecond: rate,
            warmUpSeconds: warmUp, burst: 32,
            replicationNode: replicationNode, verbose: verbose, trace: trace, progress: progress
        )
        let batchBytes = ReplicationLeaderConfiguration(dataDirectory: "/", clusterID: "c", nodeID: "n").batchBytes

        let loadAverageAtStart = Self.loadAverage()
        progress.note("leader-saturation: measuring the LZ4 one-core ceiling on the same records")
        let before = CompressionCeiling.measure(pool: pool, batchBytes: batchBytes)
        var results: [ScenarioResult] = []
        for scenario in selected {
            progress.note("leader-saturation: \(scenario.name) (\(scenario.summary)), " + String(format: "%.0f s of load", duration))
            results.append(try await ScenarioRunner(scenario: scenario, settings: settings).run())
        }
        progress.note("leader-saturation: measuring the LZ4 one-core ceiling again")
        let after = CompressionCeiling.measure(pool: pool, batchBytes: batchBytes)
        // The machine is shared: the better of the two readings is the ceiling.
        let ceiling = before.bytesPerSecond >= after.bytesPerSecond ? before : after

        let report = Report(ceiling: ceiling, results: results, settings: settings)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("""
            leader-saturation: \(pool.label), \(producers) producers, \(settings.appendLabel), \(settings.rateLabel), \
            \(settings.layout.label(producers: producers, segmentBytes: segmentBytes)); \(String(format: "%.0f", duration)) s per scenario; \
            leader queue bound \(queueBytes >> 20) MiB per follower, backlog \(backlogBytes >> 20) MiB, batches of \(batchBytes >> 10) KiB; \
            slow follower capped at \(String(format: "%.2f", Double(slowBytesPerSecond) / 1e6)) MB/s; followers fsync; \
            leader, proxies and \(results.map(\.scenario.followers).max() ?? 0) follower processes at most share \(cores) cores on 127.0.0.1.
            LZ4 one-core ceiling: \(String(format: "%.1f", ceiling.bytesPerSecond / 1e6)) MB/s of payload \
            (\(String(format: "%.1f", before.bytesPerSecond / 1e6)) before the scenarios, \(String(format: "%.1f", after.bytesPerSecond / 1e6)) after; \
            compression \(String(format: "%.2f", ceiling.compressionRatio))x). MB = 10^6 bytes, MiB = 2^20 bytes.
            Machine load (1-minute load average, runnable processes): \(loadAverageAtStart) at the start, \(Self.loadAverage()) at the end.

            """)
        print(report.table())
        for failure in report.failures() { print(failure) }
        print("")
        print(report.eventsTable())
        print("")
        print("Targets:")
        let checks = report.targetChecks()
        for check in checks { print("  \(check.met ? "met   " : "MISSED") \(check.text)") }
        if checks.isEmpty { print("  (none decidable from the scenarios run)") }
        if let json {
            try report.json().write(to: URL(fileURLWithPath: json))
            print("\nJSON written to \(json)")
        }
        if let chart {
            let svg = ThroughputChart(
                results: results, ceilingBytesPerSecond: ceiling.bytesPerSecond, workload: pool.label + ", \(producers) producers",
                resourceWindowStartSeconds: settings.resourceWindowStartSeconds
            ).svg()
            try Data(svg.utf8).write(to: URL(fileURLWithPath: chart))
            print("\(json == nil ? "\n" : "")Chart written to \(chart)")
        }
    }

    /// The 1-minute load average, from /proc/loadavg ("?" where there is none).
    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
    }

    /// `replication-node`, next to this executable in the same build directory.
    static func replicationNodeBinary() throws -> URL {
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let binary = executable.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("replication-node")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw BenchmarkError("""
                \(binary.path) not found: build it next to leader-saturation, e.g. \
                `swift build -c release --product replication-node` (same configuration and --scratch-path)
                """)
        }
        return binary
    }
}
