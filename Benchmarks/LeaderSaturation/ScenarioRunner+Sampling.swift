import BrokerReplication
import Foundation

extension ScenarioRunner {
    /// Every 250 ms until told to stop (and at most duration / 250 ms + 400 times): records
    /// per second, the leader's counters, lag, throttling and evictions, and the resources of
    /// the leader and follower processes (``ResourceSample``); updates the progress line.
    func sample(
        _ leader: ReplicationLeader, followers: [FollowerProcess], counters: LoadCounters, loadStart: UInt64, loadStartDate: Date, stop: Shared<Bool>
    ) async -> ([Sample], EvictionLog) {
        var samples: [Sample] = []
        var evictionLog = EvictionLog()
        var previousRecords = 0
        var previousTime = loadStart
        let maxSamples = Int(settings.durationSeconds * 4) + 400
        while !stop.value, samples.count < maxSamples {
            try? await Task.sleep(for: Self.samplingInterval)
            let now = monotonicNanoseconds()
            let records = counters.records.load(ordering: .relaxed)
            let status = leader.status()
            evictionLog.record(status, loadStart: loadStartDate)
            let seconds = Double(now - loadStart) / 1e9
            let rate = Double(records - previousRecords) / (Double(now - previousTime) / 1e9)
            let point = Sample(
                seconds: seconds, recordsPerSecond: rate, payloadBytes: status.payloadBytes, wireBytes: status.wireBytes,
                throttledProducers: status.throttledProducers,
                maxLagBytes: status.followers.map(\.lagBytes).max() ?? 0, maxLagSeconds: status.followers.map(\.lagSeconds).max() ?? 0,
                liveFollowers: status.followers.filter { $0.state == .live }.count,
                resources: ResourceSample.read(status: status, followers: followers)
            )
            samples.append(point)
            // A follower that needs a full sync (it fell out of the backlog) shows its progress
            // every second: a sync above a few seconds is visible in the output.
            if samples.count % 4 == 0 {
                for follower in status.followers where follower.state == .syncing {
                    guard let sync = follower.fullSync, sync.bytes > 0 else { continue }
                    settings.progress.note(String(
                        format: "%.2f s: %@ full sync: %d/%d files, %d/%d bytes (kept %d), %.1f MB/s, %d s left", seconds,
                        follower.nodeID, sync.filesDone, sync.files, sync.bytesDone, sync.bytes, sync.bytesKept,
                        Double(sync.bytesPerSecond) / 1e6, sync.secondsLeft
                    ))
                }
            }
            if settings.trace {
                let lines = status.followers.map {
                    "\($0.nodeID) \($0.state) queued \($0.queuedBytes) B, lag \($0.lagBytes) B / " + String(format: "%.2f s", $0.lagSeconds)
                }
                settings.progress.note(String(format: "trace %.2f s: ", seconds) + "in-sync \(status.isr), throttled producers \(status.throttledProducers); " + lines.joined(separator: "; "))
            }
            previousRecords = records
            previousTime = now
            let evicted = status.evictions.values.reduce(0, +)
            settings.progress.update("\(scenario.name): " + String(
                format: "%4.1f / %.0f s   %9.0f records/s   %6.1f MB/s payload   live followers %d   evictions %d   throttled producers %d   max lag %.1f MB   leader RSS %.0f MiB, %d fds",
                seconds, settings.durationSeconds, rate, Double(status.payloadBytes) / max(seconds, 0.001) / 1e6,
                point.liveFollowers, evicted, point.throttledProducers, Double(point.maxLagBytes) / 1e6,
                Double(point.resources.leaderResidentBytes) / 1_048_576, point.resources.leaderDescriptors
            ))
        }
        return (samples, evictionLog)
    }
}
