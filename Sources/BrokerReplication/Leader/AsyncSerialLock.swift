import DequeModule
import Synchronization

/// A FIFO lock for async code: the holder may await (pace a large write, wait for admission)
/// without blocking a thread, and waiters resume in arrival order. Used only to keep writes to
/// one file in order.
///
/// A waiter gives up at its deadline or when its task is cancelled, and leaves the queue:
/// a producer's wait for earlier writes to the same file is part of its own `producerTimeout`,
/// not added to it.
final class AsyncSerialLock: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, any Error>
    }

    private struct State {
        var isHeld = false
        var waiters: Deque<Waiter> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Waits for the lock until `deadline`.
    /// - Returns: true once held; false at the deadline (not held).
    /// - Throws: `CancellationError` when the task is cancelled while waiting (not held).
    func acquire(before deadline: ContinuousClock.Instant) async throws -> Bool {
        // Uncontended (the usual case: one producer per file): no continuation, no allocation.
        let id = state.withLock { state -> UInt64? in
            if state.isHeld {
                defer { state.nextID += 1 }
                return state.nextID
            }
            state.isHeld = true
            return nil
        }
        guard let id else { return true }
        let expiry = Task {
            try await Task.sleep(until: deadline)
            self.abandon(id, with: .success(false))
        }
        defer { expiry.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                // Decided under the lock that release and abandon take, so each waiter is
                // resumed exactly once, whichever comes first.
                let outcome = state.withLock { state -> Result<Bool, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if ContinuousClock.now >= deadline { return .success(false) }
                    if !state.isHeld {
                        state.isHeld = true
                        return .success(true)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            abandon(id, with: .failure(CancellationError()))
        }
    }

    /// Takes waiter `id` out of the queue, if it is still waiting, and resumes it with `outcome`.
    private func abandon(_ id: UInt64, with outcome: Result<Bool, any Error>) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(with: outcome)
    }

    func release() {
        let next = state.withLock { state -> Waiter? in
            if let next = state.waiters.popFirst() { return next }  // ownership passes to the next waiter
            state.isHeld = false
            return nil
        }
        next?.continuation.resume(returning: true)
    }

    /// Runs `body` holding the lock; nil when the lock was not free before `deadline`.
    func withLock<T>(before deadline: ContinuousClock.Instant, _ body: () async throws -> T) async throws -> T? {
        guard try await acquire(before: deadline) else { return nil }
        defer { release() }
        return try await body()
    }
}
