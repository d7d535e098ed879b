import BrokerReplication
import Foundation
import Logging
import Synchronization

/// A ``LeaderElection`` over etcd: the leader is whoever created `<prefix>/leader`, a key
/// attached to its lease, so it disappears when the leader stops renewing the lease.
///
/// A term is identified by the leader key's create revision. ``coordinator`` writes the
/// cluster state (`<prefix>/state`) only in transactions that check that revision, so etcd
/// itself refuses the writes of a node whose term ended, whatever that node believes.
///
/// ``leadershipDeadline()`` is the send time of the last successful renewal plus the lease's
/// TTL, minus a quarter of it: etcd cannot have expired the lease before then (its clock starts
/// after it received the renewal), so the leader may confirm writes up to it without asking.
public final class EtcdElection: LeaderElection {
    /// The member and key prefix this election uses.
    public let endpoint: EtcdEndpoint
    /// This node's id, the one its ``LeaderRecord`` and the fencing errors name.
    public let nodeID: String
    /// The TTL of this node's lease: how long the cluster waits for a leader that vanished.
    public let leaseTTL: Duration
    /// The key whose creator leads: `<prefix>/leader`.
    public var leaderKey: String { endpoint.prefix + "/leader" }
    /// The key holding the ``CoordinatorState`` as JSON: `<prefix>/state`.
    public var stateKey: String { endpoint.prefix + "/state" }

    let client: EtcdClient
    let logger: Logger
    private let ttlSeconds: Int64
    private let state = Mutex(Leadership())

    /// What this node knows of its lease and term; changed under the mutex only.
    private struct Leadership {
        /// The lease this node campaigns with; nil before the first grant or once lost.
        var lease: Int64?
        /// Until when the lease is certainly alive (last renewal's send time + TTL − TTL/4).
        var leaseDeadline: ContinuousClock.Instant?
        /// Whether this node won its last campaign and its lease is not known lost.
        var leading = false
        /// The leader key's create revision in the term this node last won; kept after the term
        /// ends so the coordinator's writes still carry it and etcd refuses them.
        var termRevision: Int64?
    }

    /// An election in the etcd at `endpoint` under its prefix, for the node `nodeID`.
    ///
    /// Nothing is sent to etcd until the first call.
    ///
    /// - Parameters:
    ///   - endpoint: the etcd member and key prefix.
    ///   - nodeID: this node's id.
    ///   - leaseTTL: how long a leader that stops renewing keeps the leadership (default
    ///     10 s); whole seconds, at least 2 (etcd's minimum).
    ///   - requestTimeout: how long one request to etcd may take (default 2 s).
    ///   - logger: where lease losses and failed renewals are reported.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   for a TTL under 2 s, a timeout that is not positive, or an empty node id.
    public init(
        endpoint: EtcdEndpoint,
        nodeID: String,
        leaseTTL: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(2),
        logger: Logger = Logger(label: "BrokerReplicationEtcd.election")
    ) throws(ReplicationError) {
        guard leaseTTL >= .seconds(2) else {
            throw .invalidConfiguration("leaseTTL: must be at least 2 seconds (etcd's minimum lease), not \(leaseTTL)")
        }
        guard requestTimeout > .zero else {
            throw .invalidConfiguration("requestTimeout: must be positive, not \(requestTimeout)")
        }
        guard !nodeID.isEmpty else { throw .invalidConfiguration("nodeID: must not be empty") }
        self.endpoint = endpoint
        self.nodeID = nodeID
        self.leaseTTL = leaseTTL
        self.ttlSeconds = leaseTTL.components.seconds
        self.client = EtcdClient(endpoint: endpoint, timeout: requestTimeout)
        var logger = logger
        logger[metadataKey: "etcd"] = "\(endpoint)"
        logger[metadataKey: "node"] = "\(nodeID)"
        self.logger = logger
    }

    /// The coordinator whose writes succeed only while this node's term lasts.
    public var coordinator: any Coordinator { EtcdCoordinator(election: self) }

    /// Tries once to create the leader key with `record`, attached to this node's lease
    /// (granted first when this node has none, or lost it).
    ///
    /// - Returns: true when this node created the key, or the key already carries its lease.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when etcd
    ///   cannot be reached or answers unexpectedly.
    public func campaign(_ record: LeaderRecord) async throws -> Bool {
        let value: Data
        do {
            value = try JSONEncoder().encode(record)
        } catch {
            throw ReplicationError.coordination("cannot encode the leader record of \"\(nodeID)\": \(error)")
        }
        var attempt = 0
        while true {
            attempt += 1
            let lease = try await currentLease()
            let result: EtcdTxnResult
            do {
                result = try await client.txn(
                    compare: [.createRevision(key: leaderKey, equals: 0)],
                    success: [.put(key: leaderKey, value: value, lease: lease)],
                    failure: [.range(key: leaderKey)],
                    what: "campaign of \"\(nodeID)\" for \(leaderKey)"
                )
            } catch let error as ReplicationError where attempt == 1 && error.message.contains("requested lease not found") {
                // The lease expired between the check and the put: start over with a new one.
                forget(lease: lease, reason: "etcd no longer knows it")
                continue
            }
            if result.succeeded {
                logger.info("won the election", metadata: ["term": "\(result.revision)", "lease": "\(lease)"])
                return won(term: result.revision, lease: lease)
            }
            if let current = result.ranges.first ?? nil, current.lease == lease {
                return won(term: current.createRevision, lease: lease)
            }
            state.withLock { $0.leading = false }
            return false
        }
    }

    /// The record of the node that leads now, nil when the leader key does not exist.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when etcd
    ///   cannot be reached or the key does not hold a ``LeaderRecord``.
    public func leader() async throws -> LeaderRecord? {
        guard let current = try await client.get(leaderKey) else { return nil }
        return try decodeRecord(current)
    }

    /// Renews this node's lease every third of its TTL until cancelled, then revokes it (best
    /// effort, one short request) so another node can win at once. Returns when cancelled.
    ///
    /// A renewal that etcd answers without a TTL means the lease is gone (revoked or
    /// expired): the leadership ends at once. A renewal that fails or times out changes
    /// nothing; the deadline then passes by itself.
    public func run() async throws {
        let interval = leaseTTL / 3
        let clock = ContinuousClock()
        var next = clock.now + interval
        while !Task.isCancelled {
            do {
                try await Task.sleep(until: next, clock: clock)
            } catch {
                break
            }
            next = max(next + interval, clock.now)
            guard let lease = state.withLock({ $0.lease }) else { continue }
            await renew(lease: lease)
        }
        await giveUpOnCancellation()
    }

    /// Until when this node's leadership is certain; nil when it does not lead.
    public func leadershipDeadline() -> ContinuousClock.Instant? {
        state.withLock { $0.leading ? $0.leaseDeadline : nil }
    }

    /// Deletes the leader key if it is still this term's and revokes the lease.
    ///
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/coordination`` when etcd
    ///   cannot be reached; the leadership is given up here all the same, and the lease
    ///   expires by itself.
    public func resign() async throws {
        let (lease, term, leading) = state.withLock { state in
            defer {
                state.leading = false
                state.lease = nil
                state.leaseDeadline = nil
            }
            return (state.lease, state.termRevision, state.leading)
        }
        guard leading || lease != nil else { return }
        if leading, let term {
            _ = try await client.txn(
                compare: [.createRevision(key: leaderKey, equals: term)],
                success: [.deleteRange(key: leaderKey)],
                failure: [],
                what: "resignation of \"\(nodeID)\" from term \(term)"
            )
        }
        if let lease { try await client.revokeLease(lease) }
        logger.info("resigned the leadership")
    }

    // MARK: - For the coordinator

    /// The term revision this node last won with; nil when it never won.
    var termRevision: Int64? { state.withLock { $0.termRevision } }

    /// The ``LeaderRecord`` in `keyValue`, or a coordination error naming the key.
    func decodeRecord(_ keyValue: EtcdKeyValue) throws -> LeaderRecord {
        do {
            return try JSONDecoder().decode(LeaderRecord.self, from: keyValue.value)
        } catch {
            throw ReplicationError.coordination("etcd at \(endpoint.address) holds at \(leaderKey) something that is not a leader record (\(error)): \(String(decoding: keyValue.value.prefix(300), as: UTF8.self))")
        }
    }

    // MARK: - Lease

    /// This node's lease: the current one when it is certainly alive or a renewal confirms it,
    /// else a newly granted one.
    private func currentLease() async throws -> Int64 {
        let clock = ContinuousClock()
        let (lease, alive) = state.withLock { ($0.lease, $0.leaseDeadline) }
        if let lease {
            if let alive, clock.now < alive { return lease }
            if await renew(lease: lease) { return lease }
        }
        let sent = clock.now
        let granted = try await client.grantLease(ttlSeconds: ttlSeconds)
        let deadline = Self.deadline(sent: sent, ttlSeconds: granted.ttlSeconds)
        state.withLock { state in
            state.lease = granted.id
            state.leaseDeadline = deadline
        }
        logger.debug("granted a lease", metadata: ["lease": "\(granted.id)", "ttl": "\(granted.ttlSeconds)"])
        return granted.id
    }

    /// Renews `lease` once: moves the deadline on success, ends the leadership when etcd no
    /// longer knows the lease, and changes nothing when etcd cannot be reached.
    ///
    /// - Returns: whether the lease is alive now.
    @discardableResult
    private func renew(lease: Int64) async -> Bool {
        let sent = ContinuousClock.now
        do {
            guard let ttl = try await client.keepAlive(lease: lease) else {
                forget(lease: lease, reason: "etcd answered its renewal without a TTL: it was revoked or expired")
                return false
            }
            let deadline = Self.deadline(sent: sent, ttlSeconds: ttl)
            state.withLock { state in
                guard state.lease == lease else { return }
                state.leaseDeadline = deadline
            }
            return true
        } catch {
            logger.debug("lease renewal failed", metadata: ["lease": "\(lease)", "error": "\(error)"])
            return false
        }
    }

    /// Ends the leadership held with `lease`, if it is still this node's lease.
    private func forget(lease: Int64, reason: String) {
        let wasLeading = state.withLock { state -> Bool in
            guard state.lease == lease else { return false }
            let wasLeading = state.leading
            state.lease = nil
            state.leaseDeadline = nil
            state.leading = false
            return wasLeading
        }
        if wasLeading {
            logger.warning("lost the leadership: lease \(lease) is gone (\(reason))")
        }
    }

    /// Records the term won with `lease`; false when the lease was found lost meanwhile (a
    /// renewal answered without a TTL), so the win does not count.
    private func won(term: Int64, lease: Int64) -> Bool {
        state.withLock { state in
            state.termRevision = term
            guard state.lease == lease else { return false }
            state.leading = true
            return true
        }
    }

    /// On cancellation of ``run()``: revoke the lease in a task of its own (this one is
    /// cancelled, so its requests would end at once), bounded by a short timeout.
    private func giveUpOnCancellation() async {
        let lease = state.withLock { state -> Int64? in
            defer {
                state.lease = nil
                state.leaseDeadline = nil
                state.leading = false
            }
            return state.lease
        }
        guard let lease else { return }
        let client = self.client
        let timeout = min(client.timeout, .seconds(1))
        let logger = self.logger
        await Task {
            do {
                try await client.revokeLease(lease, timeout: timeout)
            } catch {
                logger.debug("could not revoke the lease on shutdown; it expires by itself", metadata: ["lease": "\(lease)", "error": "\(error)"])
            }
        }.value
    }

    private static func deadline(sent: ContinuousClock.Instant, ttlSeconds: Int64) -> ContinuousClock.Instant {
        let ttl = Duration.seconds(ttlSeconds)
        return sent + ttl - ttl / 4
    }
}
