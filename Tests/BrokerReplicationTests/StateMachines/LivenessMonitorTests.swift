import Testing

@testable import BrokerReplication

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
}
