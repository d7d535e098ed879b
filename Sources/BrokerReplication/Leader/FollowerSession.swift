import DequeModule
import NIOCore
import Synchronization

/// One connected follower as the leader's shared state sees it: where its stream stands, its
/// bounded outbound queue, and the channel to close when it must go.
///
/// Lock order: the leader's state lock, then a session's lock; never the other way round.
package final class FollowerSession: Sendable {
    package enum Mode: Equatable, Sendable {
        /// Receiving a full sync; frames for it come from the backlog afterwards.
        case syncing
        /// Reading from the backlog, starting at this LSN, until it reaches the live end.
        case catchingUp(nextLSN: UInt64)
        /// Caught up: producers offer it every sealed frame.
        case live
        /// Gone; the reason is logged once by whoever closed it.
        case closed(EvictionReason)
    }

    package struct State {
        package var mode: Mode
        package var queue: OutboundQueue
        package var ackedLSN: UInt64
        /// The last LSN handed to the socket writer.
        package var sentLSN: UInt64
        package var syncProgress: SyncProgress?
        /// Data frames written to the socket and not yet acked, oldest first (for lag in bytes
        /// and seconds): bounded by the queue's frame bound plus one take.
        package var inFlight: Deque<InFlight> = []
        /// Bytes of data frames written to the socket, and of those acked, on this connection.
        package var sentBytes = 0
        package var ackedBytes = 0
        package var waiter: CheckedContinuation<Void, Never>?
        /// Work arrived while nobody was waiting.
        package var signalled = false
    }

    package struct InFlight: Sendable {
        package var lastLSN: UInt64
        package var bytes: Int
        package var sealedAt: ContinuousClock.Instant
    }

    /// Unique per connection, so a reconnected follower's new session never mixes with its old one.
    package let connectionID: UInt64
    package let nodeID: String
    package let remoteAddress: String
    package let channel: any Channel
    /// When the follower was last heard from or made progress: a second connection with this
    /// node id is refused while this one is alive.
    package let liveness: SharedLiveness
    package let state: Mutex<State>

    package init(
        connectionID: UInt64, nodeID: String, remoteAddress: String, channel: any Channel, liveness: SharedLiveness,
        mode: Mode, queue: OutboundQueue, ackedLSN: UInt64
    ) {
        self.connectionID = connectionID
        self.nodeID = nodeID
        self.remoteAddress = remoteAddress
        self.channel = channel
        self.liveness = liveness
        self.state = Mutex(State(mode: mode, queue: queue, ackedLSN: ackedLSN, sentLSN: ackedLSN))
    }

    /// Marks the session closed and frees its queue; returns the waiter to resume (outside the lock).
    package static func close(_ state: inout State, reason: EvictionReason) -> CheckedContinuation<Void, Never>? {
        if case .closed = state.mode { return nil }
        state.mode = .closed(reason)
        state.queue.removeAll()
        return takeWaiter(&state)
    }

    /// Signals new work; returns the waiter to resume (outside the lock), if one is waiting.
    package static func takeWaiter(_ state: inout State) -> CheckedContinuation<Void, Never>? {
        if let waiter = state.waiter {
            state.waiter = nil
            return waiter
        }
        state.signalled = true
        return nil
    }

    /// Suspends until work is signalled (or the task is cancelled).
    package func waitForWork() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signalled || Task.isCancelled {
                        state.signalled = false
                        return true
                    }
                    if case .closed = state.mode { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { Self.takeWaiter(&$0) }?.resume()
        }
    }

    package var mode: Mode { state.withLock { $0.mode } }
}

extension FollowerSession.State {
    /// Records frames written to the socket.
    package mutating func sent(_ batches: [SealedBatch]) {
        for batch in batches {
            inFlight.append(.init(lastLSN: batch.lastLSN, bytes: batch.wireBytes, sealedAt: batch.sealedAt))
            sentBytes += batch.wireBytes
        }
    }

    /// Settles the in-flight frames an ack covers; returns their bytes.
    package mutating func settle(ackedThrough lsn: UInt64) -> Int {
        var bytes = 0
        while let first = inFlight.first, first.lastLSN <= lsn {
            bytes += first.bytes
            inFlight.removeFirst()
        }
        ackedBytes += bytes
        return bytes
    }

    /// Bytes the follower has still to ack: queued plus written and unacked.
    package var lagBytes: Int { queue.queuedBytes + sentBytes - ackedBytes }

    /// How long ago the oldest frame it has not acked was sealed; zero when it has them all.
    package func lagSeconds(at now: ContinuousClock.Instant) -> Double {
        guard let oldest = inFlight.first?.sealedAt ?? queue.oldestSealedAt else { return 0 }
        let lag = now - oldest
        return Double(lag.components.seconds) + Double(lag.components.attoseconds) / 1e18
    }
}
