import Synchronization
import Testing

/// Runs heavy tests (a cluster on sockets, follower processes, sustained load) one at a time
/// across every suite and test target, while light tests keep running in parallel.
///
/// swift-testing runs suites in parallel; on a 2-core machine several clusters under load at
/// once starve each other's event loops, and a healthy follower then misses its ack deadline.
/// A `.serialized` suite only orders its own tests, so every heavy suite takes this trait.
///
/// It also replaces `.timeLimit` on those suites: swift-testing's time limit would count the
/// time a test waits for its turn. This one counts from the moment the test holds the gate.
public struct HeavyTestTrait: SuiteTrait, TestTrait, TestScoping {
    /// How long one heavy test case may hold the gate before it is reported as hung.
    public static let timeLimit = Duration.seconds(600)

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // Suites and whole tests pass through; each test case (the work itself) takes the gate.
        guard testCase != nil else { return try await function() }
        await HeavyTestGate.shared.acquire()
        let started = ContinuousClock.now
        defer {
            HeavyTestGate.shared.release()
            // One line per heavy test case: where the suite's time goes.
            print("heavy test \(test.name) held the gate for \(ContinuousClock.now - started)")
        }
        // The task group awaits both children before returning, so `function` never outlives this call.
        try await withoutActuallyEscaping(function) { function in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await function()
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: Self.timeLimit)
                    return false
                }
                let finished = try await group.next() ?? true
                group.cancelAll()
                if !finished {
                    Issue.record("\(test.name) held the heavy-test gate for more than \(Self.timeLimit): it hangs (cancelled)")
                }
            }
        }
    }
}

extension Trait where Self == HeavyTestTrait {
    /// One heavy test at a time in the whole test run: see ``HeavyTestTrait``.
    public static var heavy: Self { Self() }
}

/// A FIFO async lock: waiters resume in arrival order, none holds a thread while waiting.
final class HeavyTestGate: Sendable {
    static let shared = HeavyTestGate()

    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if !state.held {
                    state.held = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            // The gate passes straight to the next waiter: it stays held.
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
