import BrokerReplication

/// One way to run the leader: how many follower processes, what goes wrong with one of them,
/// and the slow-follower policy.
struct Scenario: Sendable, Equatable {
    /// What happens to the last follower (`f<followers>`), the "faulty" one.
    enum Fault: Sendable, Equatable {
        case none
        /// It connects through a `FaultInjectingProxy` whose leader-to-follower direction is
        /// capped in bytes per second from the moment the load starts.
        case bandwidthCap
        /// It connects through a `FaultInjectingProxy` that black-holes both directions (holds
        /// everything, closes nothing) a quarter of the way into the run.
        case blackHole
        /// Its process is SIGSTOPped a quarter of the way into the run (SIGCONT at the end).
        case frozen

        var usesProxy: Bool { self == .bandwidthCap || self == .blackHole }

        /// When the fault starts, as a fraction of the run.
        var startFraction: Double {
            switch self {
            case .none, .bandwidthCap: 0
            case .blackHole, .frozen: 0.25
            }
        }
    }

    let name: String
    let followers: Int
    let fault: Fault
    let policy: ReplicationPolicy
    let summary: String
    /// Replication over mutual TLS: the leader requires client certificates, each follower
    /// presents one naming its node id (certificates made by `TestCertificates` in the run's
    /// temporary directory).
    var tls = false

    /// Producers ask for a confirm (`waitForReplication`) per burst: only under min-ISR,
    /// where a confirm is what the policy is for.
    var confirms: Bool {
        if case .minInSyncReplicas = policy { return true }
        return false
    }

    /// The faulty follower's node id, if the scenario has one.
    var faultyNodeID: String? { fault == .none ? nil : "f\(followers)" }

    static let all: [Scenario] = [
        Scenario(name: "no-followers", followers: 0, fault: .none, policy: .evictSlowFollowers, summary: "no follower: the leader alone"),
        Scenario(name: "healthy-1", followers: 1, fault: .none, policy: .evictSlowFollowers, summary: "1 healthy follower"),
        Scenario(name: "healthy-2", followers: 2, fault: .none, policy: .evictSlowFollowers, summary: "2 healthy followers"),
        Scenario(name: "healthy-2-tls", followers: 2, fault: .none, policy: .evictSlowFollowers, summary: "2 healthy followers over mutual TLS", tls: true),
        Scenario(name: "healthy-4", followers: 4, fault: .none, policy: .evictSlowFollowers, summary: "4 healthy followers"),
        Scenario(name: "healthy-8", followers: 8, fault: .none, policy: .evictSlowFollowers, summary: "8 healthy followers"),
        Scenario(name: "slow-1-of-2", followers: 2, fault: .bandwidthCap, policy: .evictSlowFollowers, summary: "f2 capped in bandwidth, evict mode"),
        Scenario(name: "blackhole-1-of-2", followers: 2, fault: .blackHole, policy: .evictSlowFollowers, summary: "f2 black-holed at 25% of the run"),
        Scenario(name: "frozen-1-of-2", followers: 2, fault: .frozen, policy: .evictSlowFollowers, summary: "f2 SIGSTOPped at 25% of the run"),
        Scenario(name: "min-isr-1-of-2-slow", followers: 2, fault: .bandwidthCap, policy: .minInSyncReplicas(1), summary: "min-ISR(1), f2 capped in bandwidth"),
        Scenario(name: "min-isr-2-of-2-slow", followers: 2, fault: .bandwidthCap, policy: .minInSyncReplicas(2), summary: "min-ISR(2), f2 capped in bandwidth"),
    ]

    static let defaultProfile = ["healthy-2", "blackhole-1-of-2", "min-isr-2-of-2-slow"]

    static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }
}
