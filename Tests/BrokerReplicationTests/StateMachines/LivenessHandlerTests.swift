import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The event-loop side of liveness on an `EmbeddedChannel`: the handler sends heartbeats on an
/// idle link, counts what the follower sends, and evicts a silent or stuck follower. The test
/// moves the handler's clock by hand and runs its timer by advancing the embedded loop, so
/// nothing depends on how fast the machine is.
@Suite("Liveness handler")
struct LivenessHandlerTests {
    final class Probe: Sendable {
        let evictions = Mutex<[(EvictionReason, Bool)]>([])
        let clock = Mutex(ContinuousClock.now)
        var all: [(EvictionReason, Bool)] { evictions.withLock { $0 } }
    }

    /// A channel with a started handler; heartbeats every 20 ms, silence or a stuck ack evict after 400 ms.
    func start(_ phase: LivenessEvent.Watch.Phase) async throws -> (EmbeddedChannel, Probe, LivenessView) {
        let channel = EmbeddedChannel(handler: LivenessHandler())
        let probe = Probe()
        let view = LivenessView(aliveFor: .seconds(1), from: probe.clock.withLock { $0 })
        let watch = LivenessEvent.Watch(
            phase: phase,
            timeouts: LivenessMonitor.Timeouts(ackTimeout: .milliseconds(400), heartbeatInterval: .milliseconds(20), heartbeatTimeout: .milliseconds(400)),
            tick: .milliseconds(5), view: view, leaderLSN: { 42 },
            evict: { reason, syncing in probe.evictions.withLock { $0.append((reason, syncing)) } },
            now: { probe.clock.withLock { $0 } }
        )
        try await channel.triggerUserOutboundEvent(LivenessEvent.start(watch)).get()
        return (channel, probe, view)
    }

    /// Moves the handler's clock by `duration`, then lets its timer run.
    func pass(_ duration: Duration, on channel: EmbeddedChannel, _ probe: Probe) {
        probe.clock.withLock { $0 += duration }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(5))
    }

    func heartbeats(in channel: EmbeddedChannel) throws -> [Heartbeat] {
        var found: [Heartbeat] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            var parser = FrameParser(preamble: .none)
            while let frame = try parser.next(from: &buffer) {
                if case .heartbeat(let heartbeat) = try WireMessage(decoding: frame) { found.append(heartbeat) }
            }
        }
        return found
    }

    func reply(on channel: EmbeddedChannel) throws {
        try channel.writeInbound(WireMessage.heartbeatReply(HeartbeatReply(echoedSentAtNanoseconds: 1, durableLSN: 0)))
    }

    @Test func anIdleLinkGetsHeartbeatsAndASilentFollowerIsEvicted() async throws {
        let (channel, probe, view) = try await start(.resumed(atLSN: 0))
        pass(.milliseconds(10), on: channel, probe)
        #expect(try heartbeats(in: channel).isEmpty, "not before the interval")
        pass(.milliseconds(15), on: channel, probe)
        let sent = try heartbeats(in: channel)
        #expect(sent.count == 1 && sent.allSatisfy { $0.leaderLSN == 42 }, "one heartbeat with the leader's LSN on an idle link")
        pass(.milliseconds(300), on: channel, probe)
        #expect(probe.all.isEmpty && view.isAlive(at: probe.clock.withLock { $0 }))
        pass(.milliseconds(100), on: channel, probe)
        #expect(probe.all.map(\.0) == [.heartbeatTimeout] && probe.all.map(\.1) == [false])
        #expect(!view.isAlive(at: probe.clock.withLock { $0 }), "the view says so, for the duplicate-node check")
    }

    @Test func repliesKeepAFollowerAliveAndAnUnackedFrameEvictsIt() async throws {
        let (channel, probe, _) = try await start(.resumed(atLSN: 0))
        for _ in 0..<10 {
            try reply(on: channel)
            pass(.milliseconds(100), on: channel, probe)
        }
        #expect(probe.all.isEmpty, "a second of replies, each within the 400 ms timeout")
        try await channel.triggerUserOutboundEvent(LivenessEvent.sent(throughLSN: 7)).get()
        for _ in 0..<3 {
            try reply(on: channel)
            pass(.milliseconds(100), on: channel, probe)
        }
        #expect(probe.all.isEmpty, "300 ms without an ack of LSN 7: not yet")
        try reply(on: channel)
        pass(.milliseconds(100), on: channel, probe)
        #expect(probe.all.map(\.0) == [.ackTimeout], "replies without an ack of LSN 7 do not count as acking it")
    }

    @Test func anAckKeepsTheFollowerAlive() async throws {
        let (channel, probe, _) = try await start(.resumed(atLSN: 0))
        for lsn in UInt64(1)...10 {
            try await channel.triggerUserOutboundEvent(LivenessEvent.sent(throughLSN: lsn)).get()
            pass(.milliseconds(100), on: channel, probe)
            try channel.writeInbound(WireMessage.ack(durableLSN: lsn))
        }
        pass(.milliseconds(100), on: channel, probe)
        #expect(probe.all.isEmpty)
    }

    @Test func aFullSyncLivesOnProgressAndIsEvictedWhenNothingMoves() async throws {
        let (channel, probe, _) = try await start(.syncing)
        for _ in 0..<10 {
            try await channel.triggerUserOutboundEvent(LivenessEvent.syncMoved).get()
            pass(.milliseconds(100), on: channel, probe)
        }
        #expect(probe.all.isEmpty, "the leader's own progress keeps the sync alive")
        pass(.milliseconds(200), on: channel, probe)
        #expect(probe.all.isEmpty, "300 ms since the last progress")
        pass(.milliseconds(100), on: channel, probe)
        #expect(probe.all.map(\.0) == [.heartbeatTimeout] && probe.all.map(\.1) == [true], "evicted while syncing")
    }
}
