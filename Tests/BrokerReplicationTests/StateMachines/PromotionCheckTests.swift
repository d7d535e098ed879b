import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Promotion (state machine)")
struct PromotionCheckTests {
    let cluster = CoordinatorState(epoch: 3, inSyncReplicas: ["a", "b"])

    @Test func onlyAMemberOfThePersistedSetOfItsOwnEpochIsPromoted() {
        #expect(PromotionCheck.refusal(nodeID: "a", position: .init(epoch: 3, lastDurableLSN: 9), cluster: cluster) == nil)
        let outsider = PromotionCheck.refusal(nodeID: "c", position: .init(epoch: 3, lastDurableLSN: 9), cluster: cluster)
        #expect(outsider?.contains("not in the last persisted in-sync set of epoch 3 (a, b)") == true)
        let stale = PromotionCheck.refusal(nodeID: "a", position: .init(epoch: 2, lastDurableLSN: 9), cluster: cluster)
        #expect(stale?.contains("another leader has taken over") == true)
        let foreign = PromotionCheck.refusal(nodeID: "a", position: .init(epoch: 4, lastDurableLSN: 9), cluster: cluster)
        #expect(foreign?.contains("not the coordinator the leader used") == true)
        let empty = PromotionCheck.refusal(nodeID: "a", position: .none, cluster: cluster)
        #expect(empty?.contains("no complete copy") == true)
    }
}
