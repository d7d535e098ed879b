import DequeModule
import Synchronization

/// A FIFO lock for async code: the holder may await (pace a large write) without blocking a
/// thread, and waiters resume in arrival order. Used only to keep writes to one file in order.
package final class AsyncSerialLock: Sendable {
    private struct State {
        var isHeld = false
        var waiters: Deque<CheckedContinuation<Void, Never>> = []
    }

    private let state = Mutex(State())

    package init() {}

    package func acquire() async {
        // Uncontended (the usual case: one producer per file): no continuation, no allocation.
        let free = state.withLock { state in
            if state.isHeld { return false }
            state.isHeld = true
            return true
        }
        if free { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state in
                if state.isHeld {
                    state.waiters.append(continuation)
                    return false
                }
                state.isHeld = true
                return true
            }
            if acquired { continuation.resume() }
        }
    }

    package func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let next = state.waiters.popFirst() { return next }  // ownership passes to the next waiter
            state.isHeld = false
            return nil
        }
        next?.resume()
    }

    package func withLock<T>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }
}
