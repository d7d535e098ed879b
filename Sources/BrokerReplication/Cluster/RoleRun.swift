import Synchronization

/// A role's `run()` in its own task, and why it ended once it did.
final class RoleRun: Sendable {
    private let task: Task<Void, Never>
    private let ended: Ended

    private final class Ended: Sendable {
        let reason = Mutex<String?>(nil)
    }

    init(_ body: @escaping @Sendable () async throws -> Void) {
        let ended = Ended()
        self.ended = ended
        self.task = Task {
            do {
                try await body()
                ended.reason.withLock { $0 = "it returned" }
            } catch {
                ended.reason.withLock { $0 = "\(error)" }
            }
        }
    }

    /// Why the role ended, nil while it runs.
    var endedReason: String? { ended.reason.withLock { $0 } }

    func wait() async { await task.value }

    func cancelAndWait() async {
        task.cancel()
        await task.value
    }
}
