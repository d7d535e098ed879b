import BrokerReplication
import BrokerReplicationTesting
import Foundation
import Histogram
import Logging
import Synchronization

/// The settings every scenario of one run shares.
struct RunSettings: Sendable {
    var durationSeconds: Double
    var producers: Int
    /// Records per append call: 1 uses `append(to:bytes:)`, more `append(to:contentsOf:)`.
    var appendBatch: Int
    var pool: RecordPool
    /// The leader's per-follower queue bound and backlog bound, in bytes.
    var queueBytes: Int
    var backlogBytes: Int
    /// The bandwidth cap of a slow follower (leader to follower), in bytes per second.
    var slowBytesPerSecond: Int
    var segmentBytes: Int
    /// Which files the producers append to (`--files`).
    var layout: FileLayout
    /// All producers together, in record bytes per second (`--rate`); nil: as fast as they can.
    var rateBytesPerSecond: Int?
    /// Seconds at the start of the load that the resource minima and maxima leave out (`--warm-up`).
    var warmUpSeconds: Double
    var burst: Int
    var replicationNode: URL
    var verbose: Bool
    /// Print every follower's queue and lag at each sample (stderr).
    var trace: Bool
    var progress: ProgressLine

    /// "1 record per append call" or "16 records per append call (append(to:contentsOf:))".
    var appendLabel: String {
        appendBatch == 1 ? "1 record per append call" : "\(appendBatch) records per append call (append(to:contentsOf:))"
    }

    /// "as fast as the leader takes them" or "at 12.50 MB/s of records in total".
    var rateLabel: String {
        rateBytesPerSecond.map { String(format: "at %.2f MB/s of records in total", Double($0) / 1e6) } ?? "as fast as the leader takes them"
    }

    /// Where a scenario's resource window starts: after the warm-up, but in a short run no
    /// later than half-way, so the window always has samples.
    var resourceWindowStartSeconds: Double { min(warmUpSeconds, durationSeconds / 2) }
}

/// Runs one scenario from scratch: a fresh leader in this process on a new temporary data
/// directory, `replication-node follower` processes, a proxy for the faulty follower, the
/// producers, the sampler and the fault; then tears everything down.
struct ScenarioRunner {
    let scenario: Scenario
    let settings: RunSettings

    static let samplingInterval: Duration = .milliseconds(250)

    func run() async throws -> ScenarioResult {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("leader-saturation-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        ChildProcesses.addTemporaryDirectory(root)
        var followers: [FollowerProcess] = []
        var proxy: FaultInjectingProxy?
        var serving: Task<Void, any Error>?
        func tearDown() async {
            for follower in followers { await follower.stop() }
            serving?.cancel()
            _ = await serving?.result
            await proxy?.stop()
            ChildProcesses.removeTemporaryDirectory(root)
        }
        do {
            let result = try await measure(root: root, followers: &followers, proxy: &proxy, serving: &serving)
            await tearDown()
            return result
        } catch {
            let logs = followers.map { $0.logTail() }.joined(separator: "\n")
            await tearDown()
            throw BenchmarkError("\(scenario.name): \(error)\n\(logs)")
        }
    }

    private func measure(
        root: String, followers: inout [FollowerProcess], proxy: inout FaultInjectingProxy?, serving: inout Task<Void, any Error>?
    ) async throws -> ScenarioResult {
        let secretFile = root + "/secret"
        try Data("leader-saturation-\(UUID().uuidString)\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        let secret = try SharedSecret(contentsOfFile: secretFile)

        // The peak RSS counts from here: the previous scenario's leader is gone.
        ProcessMetrics.resetPeakResidentBytes()
        let residentBytesAtStart = ProcessMetrics.residentBytes()
        var configuration = ReplicationLeaderConfiguration(dataDirectory: root + "/leader", clusterID: "leader-saturation", nodeID: "leader")
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.queueBytes = settings.queueBytes
        configuration.backlogBytes = settings.backlogBytes
        configuration.policy = scenario.policy
        // Mutual TLS: the leader's certificate names 127.0.0.1 (what the followers dial), each
        // follower's names its node id.
        let certificates = scenario.tls ? try TestCertificates(directory: root + "/tls") : nil
        if let certificates { configuration.tls = try certificates.leaderTLS(requireClientCertificate: true) }
        var logger = Logger(label: "BrokerReplication.leader")
        logger.logLevel = settings.verbose ? .info : .error
        let leader = try ReplicationLeader(configuration: configuration, secret: secret, logger: logger)
        serving = Task { try await leader.run() }
        let port = try await leader.listeningPort()

        let faultyProxy: FaultInjectingProxy? = scenario.fault.usesProxy ? FaultInjectingProxy(upstreamPort: port) : nil
        proxy = faultyProxy
        let proxyPort = try await faultyProxy?.start()
        for number in stride(from: 1, through: scenario.followers, by: 1) {
            let nodeID = "f\(number)"
            let target = nodeID == scenario.faultyNodeID && scenario.fault.usesProxy ? proxyPort! : port
            var tlsArguments: [String] = []
            if let certificates {
                // --tls-require-client-cert is the leader's (in this process); a follower ignores it.
                let tls = try certificates.followerTLS(nodeID: nodeID)
                tlsArguments = ["--tls-cert", tls.certificateChainFile!, "--tls-key", tls.privateKeyFile!, "--tls-ca", tls.trustedRootsFile!]
            }
            followers.append(try FollowerProcess(
                nodeID: nodeID, binary: settings.replicationNode,
                arguments: [
                    "--data-dir", root + "/" + nodeID, "--leader", "127.0.0.1:\(target)", "--secret-file", secretFile,
                    "--cluster-id", "leader-saturation", "--node-id", nodeID,
                ] + tlsArguments,
                logPath: root + "/\(nodeID).log", statusPath: root + "/\(nodeID).status.json"
            ))
        }
        try await waitUntilReady(leader, followers: followers)

        // The load. The producers' queues (up to 100,000 paths) are made before the clocks start.
        let producers = (0..<settings.producers).map { index in
            Producer(
                index: index, leader: leader, pool: settings.pool,
                queues: settings.layout.queues(ofProducer: index, producers: settings.producers), segmentBytes: settings.segmentBytes,
                burst: settings.burst, appendBatch: settings.appendBatch,
                bytesPerSecond: settings.rateBytesPerSecond.map { Double($0) / Double(settings.producers) }
            )
        }
        let secondsToCreateFiles = try await createFiles(producers, leader: leader, followers: followers.count)
        let counters = LoadCounters()
        let durationNanoseconds = UInt64(settings.durationSeconds * 1e9)
        let maxRecordsPerProducer = Int(min(Double(Int.max / 4), settings.durationSeconds * 10_000_000))
        let faultyFollower = followers.first { $0.nodeID == scenario.faultyNodeID }
        if scenario.fault == .bandwidthCap {
            faultyProxy?.set(.init(bytesPerSecond: settings.slowBytesPerSecond), for: .serverToClient)
        }
        let startStatus = leader.status()
        let cpuAtStart = ProcessMetrics.cpuSeconds()
        let followerCPUAtStart = followers.map { $0.cpuSeconds() }
        let followerFlushesAtStart = followers.map { $0.groupCommits() }
        let loadStartDate = Date()
        let loadStart = monotonicNanoseconds()
        let deadline = loadStart + durationNanoseconds
        let faultDate = Shared<Date?>(scenario.fault == .bandwidthCap ? loadStartDate : nil)
        let faulting = Task {
            guard scenario.fault == .blackHole || scenario.fault == .frozen else { return }
            let at = loadStart + UInt64(scenario.fault.startFraction * Double(durationNanoseconds))
            let now = monotonicNanoseconds()
            if at > now { try? await Task.sleep(for: .nanoseconds(Int64(at - now))) }
            switch scenario.fault {
            case .blackHole: faultyProxy?.set(.init(blackHole: true))
            case .frozen: faultyFollower?.send(SIGSTOP)
            case .none, .bandwidthCap: break
            }
            faultDate.set(Date())
        }
        let stopSampling = Shared(false)
        let sampled = followers
        let sampler = Task { await sample(leader, followers: sampled, counters: counters, loadStart: loadStart, loadStartDate: loadStartDate, stop: stopSampling) }
        let trackers = (0..<settings.producers).map { _ in
            scenario.confirms ? ConfirmTracker(leader: leader, drainDeadlineNanoseconds: deadline + 20_000_000_000) : nil
        }
        let producerResults = try await withThrowingTaskGroup(of: ProducerResult.self) { group in
            for index in 0..<settings.producers {
                let producer = producers[index]
                let tracker = trackers[index]
                group.addTask {
                    try await producer.run(deadlineNanoseconds: deadline, maxRecords: maxRecordsPerProducer, counters: counters, confirms: tracker)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        leader.flush()
        let loadSeconds = Double(monotonicNanoseconds() - loadStart) / 1e9
        let cpuSeconds = ProcessMetrics.cpuSeconds() - cpuAtStart
        let followerCPUSeconds = zip(followers, followerCPUAtStart).map { $0.cpuSeconds() - $1 }
        let followerFlushes = zip(followers, followerFlushesAtStart).map { follower, atStart in
            follower.groupCommits().flatMap { atEnd in atStart.map { atEnd - $0 } }
        }
        let endStatus = leader.status()
        stopSampling.set(true)
        var (samples, evictionLog) = await sampler.value
        await faulting.value

        // Confirms still in flight drain here (bounded); they do not count in the load time.
        var confirmResults: [ConfirmTracker.Result] = []
        for tracker in trackers.compactMap({ $0 }) { confirmResults.append(await tracker.finish()) }

        // A black-holed or frozen follower must be evicted: give the leader up to 15 s more.
        var secondsToEvict: Double?
        if let faulty = scenario.faultyNodeID, let since = faultDate.value {
            let waitUntil = ContinuousClock.now + .seconds(scenario.fault == .bandwidthCap ? 0 : 15)
            repeat {
                let status = leader.status()
                evictionLog.record(status, loadStart: loadStartDate)
                if let first = status.recentEvictions.first(where: { $0.nodeID == faulty && $0.at >= since.addingTimeInterval(-0.001) }) {
                    secondsToEvict = max(0, first.at.timeIntervalSince(since))
                    break
                }
                if ContinuousClock.now >= waitUntil { break }
                try await Task.sleep(for: .milliseconds(50))
            } while true
        }
        let finalStatus = leader.status()
        evictionLog.record(finalStatus, loadStart: loadStartDate)
        let peakResidentBytes = ProcessMetrics.peakResidentBytes()
        settings.progress.finish()

        var appendLatency = makeLatencyHistogram()
        for result in producerResults { appendLatency.add(result.appendLatency) }
        var confirmLatency: Histogram<UInt64>?
        if scenario.confirms {
            var merged = makeLatencyHistogram()
            for result in confirmResults { merged.add(result.latency) }
            confirmLatency = merged
        }
        if samples.isEmpty {
            samples.append(Sample(
                seconds: loadSeconds, recordsPerSecond: 0, payloadBytes: 0, wireBytes: 0, throttledProducers: 0, maxLagBytes: 0, maxLagSeconds: 0,
                liveFollowers: 0, resources: .none
            ))
        }
        return ScenarioResult(
            scenario: scenario, loadSeconds: loadSeconds,
            records: producerResults.reduce(0) { $0 + $1.records },
            payloadBytes: endStatus.payloadBytes - startStatus.payloadBytes, wireBytes: endStatus.wireBytes - startStatus.wireBytes,
            appendLatency: appendLatency, confirmLatency: confirmLatency,
            confirmsFailed: confirmResults.reduce(0) { $0 + $1.failed }, unconfirmedAtEnd: confirmResults.reduce(0) { $0 + $1.unconfirmedAtEnd },
            refusedWrites: producerResults.reduce(0) { $0 + $1.refusedWrites },
            notEnoughReplicasErrors: finalStatus.notEnoughReplicasErrors,
            evictions: finalStatus.evictions.values.reduce(0, +), evictionsByReason: finalStatus.evictions,
            secondsToEvict: secondsToEvict,
            maxLagBytes: samples.map(\.maxLagBytes).max() ?? 0, maxLagSeconds: samples.map(\.maxLagSeconds).max() ?? 0,
            peakResidentBytes: peakResidentBytes, residentBytesAtStart: residentBytesAtStart, cpuSeconds: cpuSeconds, followerCPUSeconds: followerCPUSeconds,
            followerFlushes: followers.isEmpty || followerFlushes.contains(nil) ? nil : followerFlushes.reduce(0) { $0 + $1! }, samples: samples,
            evictionMarks: evictionLog.marks,
            faultSeconds: faultDate.value.map { $0.timeIntervalSince(loadStartDate) },
            capBytesPerSecond: scenario.fault == .bandwidthCap ? settings.slowBytesPerSecond : nil,
            segmentsDeleted: producerResults.reduce(0) { $0 + $1.segmentsDeleted },
            filesAppended: producerResults.reduce(0) { $0 + $1.filesStarted }, secondsToCreateFiles: secondsToCreateFiles
        )
    }

    /// With `--files`, creates every queue's first segment (one record each) and waits until
    /// every follower has acked them, at most 300 s; returns how long that took, or nil
    /// without `--files`. A broker's queues exist before its load: otherwise a short run of
    /// 10,000 files would mostly measure 3 x 10,000 file and directory creations, and not
    /// appends spread over many files.
    private func createFiles(_ producers: [Producer], leader: ReplicationLeader, followers: Int) async throws -> Double? {
        guard let files = settings.layout.files else { return nil }
        settings.progress.update("\(scenario.name): creating \(files) files before the load")
        let start = monotonicNanoseconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in producers { group.addTask { try await producer.createQueues() } }
            try await group.waitForAll()
        }
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline {
            let status = leader.status()
            if status.followers.count >= followers, status.followers.allSatisfy({ $0.ackedLSN >= status.lastLSN }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        settings.progress.note("\(scenario.name): " + String(format: "%d files created on the leader and %d followers in %.1f s", files, followers, seconds))
        return seconds
    }

    /// Waits (at most 60 s) until every follower is live, and under min-ISR in the stored
    /// in-sync set, so the load starts on a settled cluster.
    private func waitUntilReady(_ leader: ReplicationLeader, followers: [FollowerProcess]) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        settings.progress.update("\(scenario.name): waiting for \(followers.count) follower(s) to connect")
        while true {
            let status = leader.status()
            let live = status.followers.filter { $0.state == .live }.count
            let inSync = status.isr.count
            if live >= followers.count, !scenario.confirms || inSync >= followers.count { return }
            if let dead = followers.first(where: { !$0.isRunning }) {
                throw BenchmarkError("follower \(dead.nodeID) exited before the load started")
            }
            if ContinuousClock.now >= deadline {
                throw BenchmarkError("followers not ready within 60 s: \(live) of \(followers.count) live, in-sync set \(status.isr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A value shared between tasks behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) { storage = Mutex(value) }

    var value: Value { storage.withLock { $0 } }
    func set(_ value: Value) { storage.withLock { $0 = value } }
}
