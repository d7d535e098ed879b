/// The rules that tie a retry budget to the deadline it serves (the table on
/// ``ReplicationConfiguration``).
extension ReplicationConfiguration {
    /// Room left between `maxLagTimeSeconds` and `producerTimeoutSeconds` for the leader to
    /// notice a laggard (every 20 ms) and store the smaller in-sync set (a file write and fsyncs).
    static let inSyncStoreAllowanceSeconds = 0.5

    /// Every retry budget is shorter than the deadline it serves (Docs/Semantics.md, "Reconnects"):
    /// a budget as long as its deadline turns one bad peer into a failure for everyone waiting.
    func validateRetryBudgets() throws(ReplicationError) {
        let invalid = ReplicationError.invalidSetting
        if heartbeatIntervalSeconds >= heartbeatTimeoutSeconds {
            throw invalid(
                "heartbeatIntervalSeconds",
                "must be shorter than heartbeatTimeoutSeconds (\(heartbeatTimeoutSeconds)), got \(heartbeatIntervalSeconds): an idle link would time out between two heartbeats"
            )
        }
        if ackTimeoutSeconds >= producerTimeoutSeconds {
            throw invalid(
                "ackTimeoutSeconds",
                "must be shorter than producerTimeoutSeconds (\(producerTimeoutSeconds)), got \(ackTimeoutSeconds): confirms would fail before a dead follower is evicted from the in-sync set"
            )
        }
        if maxLagTimeSeconds + Self.inSyncStoreAllowanceSeconds > producerTimeoutSeconds {
            throw invalid(
                "maxLagTimeSeconds",
                "must be at least \(Self.inSyncStoreAllowanceSeconds) s shorter than producerTimeoutSeconds (\(producerTimeoutSeconds)), got \(maxLagTimeSeconds): a confirm waits for a lagging in-sync follower until it has lagged that long and its removal is stored"
            )
        }
        if policy == .minInSyncReplicas, reconnectCapSeconds + connectTimeoutSeconds >= producerTimeoutSeconds {
            throw invalid(
                "reconnectCapSeconds",
                "reconnectCapSeconds + connectTimeoutSeconds (\(reconnectCapSeconds + connectTimeoutSeconds)) must be shorter than producerTimeoutSeconds (\(producerTimeoutSeconds)) under minInSyncReplicas: producers held back for an evicted follower would give up before it can reconnect"
            )
        }
    }
}
