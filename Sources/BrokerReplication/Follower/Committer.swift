import NIOCore
import NIOPosix
import Synchronization

/// Group commit: takes whatever was applied since the last round, makes it durable with one
/// flush of the data directory's file system (`syncfs`), stores the position, then acks.
/// Acks never cover what is not durable.
///
/// The position is stored after the flush, so the state file never claims more than the disk
/// holds; it becomes durable itself with the next group's flush (or at once, for the last
/// commit of a connection). A power loss can therefore leave it one group behind what was
/// acked: the next connection replays that group, which leaves the same files (appends and
/// replace chunks carry their offsets). One flush per group instead of two.
final class Committer: Sendable {
    private struct State {
        var appliedLSN: UInt64
        var waiter: CheckedContinuation<Void, Never>?
        var signalled = false
        var stopped = false
        /// A graceful shutdown asked for one last commit and ack.
        var finishing = false
        /// A batch is being applied: a graceful shutdown waits for it, to commit and ack it too.
        var applying = false
        var finished: [CheckedContinuation<Void, Never>] = []
    }

    private let follower: ReplicationFollower
    private let epoch: UInt64
    private let durable: Bool
    private let state: Mutex<State>

    init(follower: ReplicationFollower, epoch: UInt64, durable: Bool, durableLSN: UInt64) {
        self.follower = follower
        self.epoch = epoch
        self.durable = durable
        self.state = Mutex(State(appliedLSN: durableLSN))
    }

    /// Before applying a batch: false once a graceful shutdown has begun, and the batch is
    /// left for the leader to resend.
    func beginApplying() -> Bool {
        state.withLock { state in
            guard !state.finishing else { return false }
            state.applying = true
            return true
        }
    }

    func applied(through lsn: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.appliedLSN = lsn
            state.applying = false
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signalled = true
            return nil
        }
        waiter?.resume()
    }

    func stop() {
        let (waiter, finished) = state.withLock { state -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            state.stopped = true
            defer {
                state.waiter = nil
                state.finished = []
            }
            return (state.waiter, state.finished)
        }
        waiter?.resume()
        for continuation in finished { continuation.resume() }
    }

    /// For a graceful shutdown: returns once everything applied so far, and the batch being
    /// applied, is durable and acked (or the connection ended first).
    func finish() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                if state.stopped { return (true, nil) }
                state.finishing = true
                state.finished.append(continuation)
                defer { state.waiter = nil }
                if state.waiter == nil { state.signalled = true }
                return (false, state.waiter)
            }
            waiter?.resume()
            if resumeNow { continuation.resume() }
        }
    }

    /// After the connection ended (and `run` returned): makes durable whatever was applied
    /// and not yet committed, and stores that position. No ack: there is no connection.
    func commitRemaining() async throws {
        let lsn = state.withLock { $0.appliedLSN }
        guard lsn > follower.status().lastDurableLSN else { return }
        try await makeDurable(through: lsn, isLast: true)
    }

    /// One flush for everything applied, then the position.
    /// - Parameter isLast: the connection ends: store the position durably too (a second flush).
    private func makeDurable(through lsn: UInt64, isLast: Bool) async throws {
        let directory = follower.directory
        let stateFile = follower.stateFile
        let position = FollowerPosition(epoch: epoch, lastDurableLSN: lsn)
        let durable = self.durable
        let start = ContinuousClock.now
        // The future form ignores task cancellation: the async form skips its work once the
        // task is cancelled, and a cancelled follower's last commit (promotion, stopping)
        // must still happen, or what it applied would be neither durable nor reported.
        try await NIOThreadPool.singleton.runIfActive(eventLoop: follower.eventLoopGroup.any()) {
            if durable { try directory.syncFileSystem() }
            try stateFile.store(position, durable: durable && isLast)
        }.get()
        follower.metrics.groupCommitted(after: ContinuousClock.now - start)
        follower.update { $0.lastDurableLSN = lsn; $0.groupCommits += 1 }
        follower.changes.durable(through: lsn, epoch: epoch)
    }

    func run(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, allocator: ByteBufferAllocator) async throws {
        var durableLSN = follower.status().lastDurableLSN
        while true {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.signalled || state.stopped {
                            state.signalled = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                stop()
            }
            let (lsn, stopped, finishing, applying) = state.withLock { state in
                (state.appliedLSN, state.stopped, state.finishing, state.applying)
            }
            // What was applied and not committed is left to commitRemaining.
            if stopped || Task.isCancelled { return }
            if lsn > durableLSN {
                try await makeDurable(through: lsn, isLast: finishing)
                durableLSN = lsn
                try await outbound.write(WireMessage.ack(durableLSN: lsn).encoded(using: allocator))
                follower.update { $0.lastAckedLSN = lsn }
            }
            // A batch still being applied signals again once applied: the next round covers it.
            if finishing && !applying {
                let finished = state.withLock { state in
                    defer { state.finished = [] }
                    return state.finished
                }
                for continuation in finished { continuation.resume() }
            }
        }
    }
}
