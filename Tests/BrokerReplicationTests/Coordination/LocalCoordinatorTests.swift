import Foundation
import Testing

@testable import BrokerReplication

@Suite("Local coordinator")
struct LocalCoordinatorTests {
    /// Separate instances share nothing in memory, as separate processes would: only the file
    /// lock keeps their read-modify-writes apart, so exactly one claim of an epoch wins.
    @Test func concurrentClaimsThroughSeparateInstancesHaveOneWinner() async throws {
        try await withScratchDirectory { root in
            let path = root + "/shared/coordinator.json"
            for epoch in UInt64(1)...30 {
                let winners = await withTaskGroup(of: String?.self) { group in
                    for node in 0..<8 {
                        group.addTask {
                            let claim = EpochClaim(epoch: epoch, nodeID: "n\(node)", requirement: .newerEpoch)
                            return (try? await LocalCoordinator(path: path).claimEpoch(claim)).map { _ in "n\(node)" }
                        }
                    }
                    return await group.reduce(into: [String]()) { if let winner = $1 { $0.append(winner) } }
                }
                #expect(winners.count == 1, "epoch \(epoch) was claimed by \(winners)")
                let stored = try await LocalCoordinator(path: path).load()
                #expect(stored.leader == winners.first)
            }
        }
    }

    @Test func anInSyncSetOfAnOlderEpochIsRefusedAndTheStateKept() async throws {
        try await withScratchDirectory { root in
            let coordinator = LocalCoordinator(path: root + "/coordinator.json")
            _ = try await coordinator.claimEpoch(EpochClaim(epoch: 1, nodeID: "a", requirement: .newerEpoch))
            try await coordinator.storeInSyncReplicas(["c", "b"], epoch: 1)
            _ = try await coordinator.claimEpoch(EpochClaim(epoch: 2, nodeID: "b", requirement: .inSync(dataEpoch: 1)))
            await #expect(throws: ReplicationError.self) { try await coordinator.storeInSyncReplicas(["x"], epoch: 1) }
            #expect(try await coordinator.load() == CoordinatorState(epoch: 2, inSyncReplicas: [], leader: "b"))
        }
    }

    /// A file written before claims recorded their leader still reads.
    @Test func aStateWithoutALeaderReads() async throws {
        try await withScratchDirectory { root in
            let path = root + "/coordinator.json"
            try Data(#"{"epoch": 3, "inSyncReplicas": ["b"]}"#.utf8).write(to: URL(fileURLWithPath: path))
            #expect(try await LocalCoordinator(path: path).load() == CoordinatorState(epoch: 3, inSyncReplicas: ["b"]))
        }
    }
}

/// Runs `body` with a fresh directory, removed afterwards.
func withScratchDirectory(_ body: (String) async throws -> Void) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("coordination-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    try await body(root)
}
