import NIOCore
import Synchronization

/// One follower connection as the leader's state refers to it: who it is, the channel to
/// close when it must go, its liveness, and the signal that wakes its writer.
///
/// Where its stream stands (mode, queue, acks) lives in the leader's state machine
/// (``FollowerTable``), under the leader's one lock; this object holds only what the actions
/// performed after that lock need.
final class FollowerSession: Identifiable, Sendable {
    /// Unique per connection, so a reconnected follower's new session never mixes with its old one.
    let id: UInt64
    let nodeID: String
    let remoteAddress: String
    let channel: any Channel
    /// When the follower was last heard from or made progress: a second connection with this
    /// node id is refused while this one is alive.
    let liveness: LivenessView
    private let signal = Mutex(Signal())

    /// A binary semaphore: work signalled while nobody waits is remembered once.
    private struct Signal {
        var waiter: CheckedContinuation<Void, Never>?
        var signalled = false
    }

    init(connectionID: UInt64, nodeID: String, remoteAddress: String, channel: any Channel, liveness: LivenessView) {
        self.id = connectionID
        self.nodeID = nodeID
        self.remoteAddress = remoteAddress
        self.channel = channel
        self.liveness = liveness
    }

    /// Wakes the writer, or lets its next wait return at once.
    func signalWork() {
        let waiter = signal.withLock { signal -> CheckedContinuation<Void, Never>? in
            guard let waiter = signal.waiter else {
                signal.signalled = true
                return nil
            }
            signal.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Suspends until work is signalled (or the task is cancelled).
    func waitForWork() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = signal.withLock { signal -> Bool in
                    if signal.signalled || Task.isCancelled {
                        signal.signalled = false
                        return true
                    }
                    signal.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signalWork()
        }
    }
}
