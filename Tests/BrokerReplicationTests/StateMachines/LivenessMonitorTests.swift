import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The liveness decisions on their own, with made-up instants.
@Suite("Liveness monitor")
struct LivenessMonitorTests {
    let start = ContinuousClock.now
    let timeouts = LivenessMonitor.Timeouts(ackTimeout: .seconds(5), heartbeatInterval: .milliseconds(200), heartbeatTimeout: .seconds(1))

    @Test func aSyncingFollowerStaysWhileBytesMoveHoweverLongTheSyncTakes() {
        var monitor = LivenessMonitor(timeouts: timeouts, now: start)
        monitor.startSync(at: start)
        for tenth in 1...600 {
            let now = start + .milliseconds(100 * tenth)
            // Chunks go out and the follower's totals grow, but it never answers a heartbeat.
            if tenth.isMultiple(of: 2) { monitor.progressed(at: now) } else { monitor.followerReported(bytes: UInt64(tenth), at: now) }
            #expect(monitor.check(at: now) != .evict(.heartbeatTimeout))
        }
    }

    @Test func aSyncingFollowerThatTalksButConsumesNothingIsEvicted() {
        var monitor = LivenessMonitor(timeouts: timeouts, now: start)
        monitor.startSync(at: start)
        monitor.followerReported(bytes: 10, at: start)
        for tenth in 1...9 {
            monitor.followerReported(bytes: 10, at: start + .milliseconds(100 * tenth))
            #expect(monitor.check(at: start + .milliseconds(100 * tenth)) != .evict(.heartbeatTimeout))
        }
        monitor.followerReported(bytes: 10, at: start + .seconds(1))
        #expect(monitor.check(at: start + .seconds(1)) == .evict(.heartbeatTimeout))
    }

    @Test func afterTheSyncTheCutIsOwedAnAckAndSilenceCountsAgain() {
        var monitor = LivenessMonitor(timeouts: timeouts, now: start)
        monitor.startSync(at: start)
        monitor.progressed(at: start + .seconds(30))
        monitor.finishSync(throughLSN: 42, at: start + .seconds(30))
        #expect(monitor.check(at: start + .milliseconds(30_900)) == .sendHeartbeat)
        #expect(monitor.check(at: start + .seconds(31)) == .evict(.heartbeatTimeout))
        monitor.acked(42, at: start + .milliseconds(30_500))
        #expect(monitor.check(at: start + .milliseconds(31_400)) == .sendHeartbeat)
        monitor.heard(at: start + .seconds(31))
        monitor.sent(throughLSN: 50, at: start + .seconds(31))
        #expect(monitor.check(at: start + .seconds(36)) == .evict(.ackTimeout))
    }

    /// The deadline another connection's admission reads (through a `LivenessView`) agrees
    /// with `check` at every step: alive exactly until `check` would evict.
    @Test func theEvictionDeadlineIsWhenCheckStartsToEvict() {
        var monitor = LivenessMonitor(timeouts: timeouts, now: start)
        monitor.start(atLSN: 10, at: start)
        for step in 1...400 {
            let now = start + .milliseconds(25 * step)
            switch step % 7 {
            case 0: monitor.sent(throughLSN: UInt64(10 + step), at: now)
            case 3: monitor.acked(UInt64(10 + step / 2), at: now)
            case 5 where step < 120: monitor.heard(at: now)
            default: break
            }
            for probe in [now, now + .milliseconds(999), now + .seconds(1), now + .seconds(6)] {
                let evicts = if case .evict = monitor.check(at: probe) { true } else { false }
                #expect(monitor.isAlive(at: probe) == !evicts, "step \(step)")
                #expect((probe < monitor.evictionDeadline) == !evicts, "step \(step)")
            }
        }
        let view = LivenessView(aliveFor: .seconds(1), from: start)
        #expect(view.isAlive(at: start + .milliseconds(999)))
        #expect(!view.isAlive(at: start + .seconds(1)))
        view.publish(start + .seconds(3))
        #expect(view.isAlive(at: start + .seconds(2)))
    }
}
