import BrokerReplication
import Foundation

/// A ``Coordinator`` that keeps the ``CoordinatorState`` as JSON at `<prefix>/state` in etcd,
/// writable only during its ``EtcdElection``'s term.
///
/// Every change is one compare-and-set in Swift and etcd together: read the state and its mod
/// revision, decide (``EpochClaim/apply(to:)``, or the in-sync set's epoch check), then one
/// transaction that writes only if (a) the state is still the one read and (b) the leader key
/// is still the one this node created when it won (its create revision, the term). So etcd
/// refuses the write of a deposed leader, even one that does not know yet that its lease
/// expired: that is the fencing a shared coordinator exists for.
public final class EtcdCoordinator: Coordinator {
    /// The election whose term fences the writes.
    public let election: EtcdElection

    /// How many times a write is retried when only the state changed between read and write.
    static let maxAttempts = 5

    /// A coordinator bound to `election`: its writes succeed only while that node's term lasts.
    ///
    /// - Parameter election: the election this node campaigns in; usually reached as
    ///   ``EtcdElection/coordinator``.
    public init(election: EtcdElection) {
        self.election = election
    }

    /// The state at `<prefix>/state`; epoch 0 and an empty in-sync set when it is absent.
    ///
    /// A read needs no term: any node may look.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when etcd
    ///   cannot be reached or the key does not hold a state.
    public func load() async throws -> CoordinatorState {
        try decodeState(try await election.client.get(election.stateKey))
    }

    /// Applies `claim` to the stored state and stores the result, during this node's term.
    ///
    /// - Parameter claim: the epoch to take, the node taking it, and what must hold first.
    /// - Returns: the stored state.
    /// - Throws: what ``EpochClaim/apply(to:)`` refuses; ``ReplicationError`` with code
    ///   ``ReplicationError/Code/coordination`` when this node never won the election, its
    ///   term ended (the message says "fenced"), or etcd cannot be reached.
    public func claimEpoch(_ claim: EpochClaim) async throws -> CoordinatorState {
        try await compareAndSet(what: "the claim of epoch \(claim.epoch) by \"\(claim.nodeID)\"") { stored in
            try claim.apply(to: stored)
        }
    }

    /// Stores `members`, sorted, as the in-sync set of `epoch`, during this node's term.
    ///
    /// - Parameters:
    ///   - members: node ids of the followers now in sync, in any order.
    ///   - epoch: the epoch of the leader storing the set.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when
    ///   `epoch` is not the stored epoch, this node never won or its term ended ("fenced"), or
    ///   etcd cannot be reached.
    public func storeInSyncReplicas(_ members: [String], epoch: UInt64) async throws {
        let sorted = members.sorted()
        _ = try await compareAndSet(what: "the in-sync set [\(sorted.joined(separator: ", "))] of epoch \(epoch)") { stored in
            guard stored.epoch == epoch else {
                throw ReplicationError.coordination("cannot store the in-sync set of epoch \(epoch): epoch \(stored.epoch) is current")
            }
            var next = stored
            next.inSyncReplicas = sorted
            return next
        }
    }

    /// Reads the state under the term's fence, lets `decide` compute the next one, and writes
    /// it in one transaction fenced by the term and the state's mod revision; retries when only
    /// the state changed meanwhile.
    private func compareAndSet(
        what: String,
        decide: (CoordinatorState) throws -> CoordinatorState
    ) async throws -> CoordinatorState {
        let client = election.client
        let leaderKey = election.leaderKey
        let stateKey = election.stateKey
        guard let term = election.termRevision else {
            throw ReplicationError.coordination("\"\(election.nodeID)\" cannot store \(what) in etcd at \(election.endpoint.address): it never won the election under \(election.endpoint.prefix); campaign first")
        }
        let fence = EtcdCompare.createRevision(key: leaderKey, equals: term)
        for _ in 0..<Self.maxAttempts {
            // The read is fenced too, so a deposed leader learns it before deciding anything
            // (also when the claim is already recorded and nothing would be written).
            let read = try await client.txn(
                compare: [fence],
                success: [.range(key: stateKey)],
                failure: [.range(key: leaderKey)],
                what: "read of \(stateKey) before \(what)"
            )
            guard read.succeeded else { throw try fenced(what: what, leader: read.ranges.first ?? nil) }
            let current = read.ranges.first ?? nil
            let stored = try decodeState(current)
            let next = try decide(stored)
            if next == stored { return stored }
            let bytes: Data
            do {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                bytes = try encoder.encode(next)
            } catch {
                throw ReplicationError.coordination("cannot encode \(what): \(error)")
            }
            let unchanged: EtcdCompare = if let current {
                .modRevision(key: stateKey, equals: current.modRevision)
            } else {
                .createRevision(key: stateKey, equals: 0)
            }
            let write = try await client.txn(
                compare: [unchanged, fence],
                success: [.put(key: stateKey, value: bytes, lease: nil)],
                failure: [.range(key: leaderKey)],
                what: "write of \(what) to \(stateKey)"
            )
            if write.succeeded { return next }
            let leader = write.ranges.first ?? nil
            if leader?.createRevision != term { throw try fenced(what: what, leader: leader) }
            // Only the state changed between the read and the write: decide again.
        }
        throw ReplicationError.coordination("cannot store \(what) in etcd at \(election.endpoint.address): \(stateKey) changed between read and write \(Self.maxAttempts) times in a row")
    }

    /// The error for a write etcd refused because the leader key is no longer this term's.
    private func fenced(what: String, leader: EtcdKeyValue?) throws -> ReplicationError {
        let owner: String
        if let leader {
            let record = try? election.decodeRecord(leader)
            let name = record.map { "\"\($0.nodeID)\"" } ?? "an unreadable record"
            owner = "\(name) (term revision \(leader.createRevision))"
        } else {
            owner = "nobody"
        }
        let term = election.termRevision.map { ", not to this node's term revision \($0)" } ?? ""
        return ReplicationError.coordination("fenced: \"\(election.nodeID)\" no longer leads (etcd at \(election.endpoint.address) refused the write of \(what): the leader key \(election.leaderKey) belongs to \(owner)\(term))")
    }

    private func decodeState(_ keyValue: EtcdKeyValue?) throws -> CoordinatorState {
        guard let keyValue else { return CoordinatorState(epoch: 0, inSyncReplicas: []) }
        do {
            return try JSONDecoder().decode(CoordinatorState.self, from: keyValue.value)
        } catch {
            throw ReplicationError.coordination("etcd at \(election.endpoint.address) holds at \(election.stateKey) something that is not a coordinator state (\(error)): \(String(decoding: keyValue.value.prefix(300), as: UTF8.self))")
        }
    }
}
