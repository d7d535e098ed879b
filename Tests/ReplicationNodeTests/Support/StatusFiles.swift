import Foundation

/// A status file that `replication-node --status-file` writes every 200 ms (renamed into
/// place, so it is never half-written), decoded as far as these tests read it.
protocol StatusFile: Decodable {}

extension StatusFile {
    /// The status file at `path`; nil while there is none yet, or when it holds the other
    /// role's keys (a follower's file before its promotion, for instance).
    static func read(_ path: String) -> Self? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(Self.self, from: $0) }
    }
}

/// The keys of a leader's status file (``LeaderStatus`` with `role`, `loadFinished` and
/// `loadRecords` added) that the tests read.
struct LeaderStatusFile: StatusFile {
    struct Follower: Decodable {
        var nodeID: String
        var state: String
        var ackedLSN: UInt64
    }

    var role: String
    var epoch: UInt64
    var lastLSN: UInt64
    var policy: String
    var isr: [String]
    var confirmedLSN: UInt64
    var notEnoughReplicasErrors: Int
    var loadFinished: Bool
    var loadRecords: Int
    var followers: [Follower]
    var evictions: [String: Int]
    var fullSyncs: Int
    var partialResyncs: Int

    /// The follower `nodeID` as the leader sees it, while it is connected.
    func follower(_ nodeID: String) -> Follower? { followers.first { $0.nodeID == nodeID } }
}

/// The keys of a follower's status file (``ReplicationFollower/FollowerStatus`` with `role`
/// and `nodeID` added) that the tests read.
struct FollowerStatusFile: StatusFile {
    var role: String
    var nodeID: String
    var epoch: UInt64
    var phase: String
    var lastDurableLSN: UInt64
    var lastAckedLSN: UInt64
    var connects: Int
    var fullSyncs: Int
    var resumes: Int
    var lastError: String?
}
