/// The producers waiting for a confirm, and the in-sync set their confirms are decided by.
///
/// Generic over `Waiter`, what the owner resumes (a continuation in the leader, a number in
/// tests). Confirms wait for followers only once the leader listens (`isGating`), so a
/// broker's start-up writes cannot deadlock: LavinMQ removed its min-ISR after exactly that.
struct Confirms<Waiter> {
    struct Pending {
        var lsn: UInt64
        var deadline: ContinuousClock.Instant
        var timeout: Duration
        var waiter: Waiter
    }

    let policy: ReplicationPolicy
    var inSync: InSyncReplicas
    private(set) var pending: [Pending] = []
    private(set) var isGating = false

    init(policy: ReplicationPolicy, maxLagTime: Duration) {
        self.policy = policy
        self.inSync = InSyncReplicas(maxLagTime: maxLagTime)
    }

    /// Starts holding confirms to the policy (once the leader listens).
    mutating func startGating() {
        isGating = true
    }

    /// A producer asks for a confirm of `lsn`.
    /// - Returns: true when it holds now; otherwise the waiter is kept until it holds or `timeout` passes.
    mutating func request(_ lsn: UInt64, waiter: Waiter, timeout: Duration, now: ContinuousClock.Instant) -> Bool {
        if !isGating || inSync.confirms(lsn, policy: policy) {
            inSync.didConfirm(lsn)
            return true
        }
        pending.append(Pending(lsn: lsn, deadline: now + timeout, timeout: timeout, waiter: waiter))
        return false
    }

    /// The waiters whose confirms hold now, removed from the waiting list.
    mutating func resolve() -> [Waiter] {
        guard !pending.isEmpty else { return [] }
        let inSync = self.inSync
        var resolved: [Waiter] = []
        var highest: UInt64 = 0
        pending.removeAll { confirm in
            guard inSync.confirms(confirm.lsn, policy: policy) else { return false }
            resolved.append(confirm.waiter)
            highest = max(highest, confirm.lsn)
            return true
        }
        self.inSync.didConfirm(highest)
        return resolved
    }

    /// The waiters past their deadline, removed, each with the `notEnoughReplicas` error it gets.
    mutating func expire(at now: ContinuousClock.Instant) -> [(Waiter, ReplicationError)] {
        let inSync = self.inSync
        let members = inSync.persisted.count
        let needed: String = switch policy {
        case .evictSlowFollowers: "all \(members) in-sync followers"
        case .minInSyncReplicas(let n): "\(n) in-sync followers"
        }
        var expired: [(Waiter, ReplicationError)] = []
        pending.removeAll { confirm in
            guard confirm.deadline <= now else { return false }
            expired.append((confirm.waiter, .notEnoughReplicas(
                "LSN \(confirm.lsn) is held by \(inSync.membersHolding(confirm.lsn)) of \(members) in-sync followers; the policy \(policy) needs \(needed) (waited \(confirm.timeout))"
            )))
            return true
        }
        return expired
    }

    /// Every waiter, removed: the leader stepped down and confirms nothing more.
    mutating func removeAll() -> [Pending] {
        defer { pending = [] }
        return pending
    }

    /// The highest LSN a confirm holds for now, given the last assigned LSN.
    func confirmedLSN(lastAssigned last: UInt64) -> UInt64 {
        let acks = inSync.persisted.map { inSync.followers[$0]?.ackedLSN ?? 0 }.sorted(by: >)
        switch policy {
        case .evictSlowFollowers: return acks.last.map { min($0, last) } ?? last
        case .minInSyncReplicas(let n): return n <= acks.count ? acks[n - 1] : 0
        }
    }
}
