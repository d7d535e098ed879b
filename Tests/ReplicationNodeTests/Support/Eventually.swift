import Testing

/// Polls `condition` every 100 ms until it holds. After `timeout` it records an issue naming
/// `what`, with `logs()` (the nodes' log tails), and throws.
func eventually(_ what: String, timeout: Duration = .seconds(120), logs: () -> String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("not within \(timeout.components.seconds) s: \(what)\n\(logs())")
    throw NodeTestError("not within \(timeout.components.seconds) s: \(what)")
}
