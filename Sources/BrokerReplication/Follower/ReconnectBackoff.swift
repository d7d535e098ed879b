/// Capped exponential backoff with full jitter for reconnecting (Docs/Semantics.md, "Reconnects").
///
/// Attempt n waits a random time in [0, min(cap, base * 2^n)]; a refused handshake waits at
/// least `refusalDelay`, so a misconfigured follower never retries in a tight loop.
struct ReconnectBackoff: Sendable {
    var base: Duration
    var cap: Duration
    var refusalDelay: Duration
    private(set) var attempt = 0

    init(base: Duration = .milliseconds(100), cap: Duration = .seconds(5), refusalDelay: Duration = .seconds(5)) {
        self.base = base
        self.cap = cap
        self.refusalDelay = refusalDelay
    }

    /// The delay before the next attempt, and one more attempt counted.
    mutating func nextDelay(afterRefusal refused: Bool = false, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = min(cap, base * (1 << min(attempt, 20)))
        attempt += 1
        let jittered = ceiling * Double.random(in: 0...1, using: &generator)
        return refused ? max(refusalDelay, jittered) : jittered
    }

    /// A connection that got through the handshake starts the sequence again.
    mutating func reset() {
        attempt = 0
    }
}
