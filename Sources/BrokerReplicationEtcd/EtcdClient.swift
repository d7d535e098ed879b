import AsyncHTTPClient
import BrokerReplication
import Foundation
import NIOCore
import NIOFoundationCompat
import Synchronization

/// The one HTTP client of this module, a global like `HTTPClient.shared` and for the same
/// reason never shut down (so no client can leak or be shut down twice), but configured for
/// a coordinator: a refused connection fails the request at once instead of being retried
/// until the timeout, no redirects, no decompression.
let etcdHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration(
        redirectConfiguration: .disallow,
        timeout: .init(connect: .seconds(10)),
        connectionPool: .init(idleTimeout: .seconds(60)),
        decompression: .disabled
    )
    configuration.connectionPool.retryConnectionEstablishment = false
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}()

/// One key as etcd stores it: what the election and the coordinator compare against.
struct EtcdKeyValue: Sendable, Equatable {
    /// The key.
    var key: String
    /// The value's bytes.
    var value: Data
    /// The revision that created the key: a term's identity for the leader key.
    var createRevision: Int64
    /// The revision of the key's last change: the state key's compare-and-set token.
    var modRevision: Int64
    /// The lease the key is attached to, 0 when none.
    var lease: Int64
}

/// A condition of a transaction: a key's create or mod revision equals a value (0 for a
/// create revision: the key does not exist).
enum EtcdCompare: Sendable {
    case createRevision(key: String, equals: Int64)
    case modRevision(key: String, equals: Int64)
}

/// An operation of a transaction's branch.
enum EtcdOperation: Sendable {
    case range(key: String)
    case put(key: String, value: Data, lease: Int64?)
    case deleteRange(key: String)
}

/// What a transaction answered.
struct EtcdTxnResult: Sendable {
    /// Whether every compare held (the success branch ran).
    var succeeded: Bool
    /// The store's revision after the transaction: a key it created has this create revision.
    var revision: Int64
    /// For each range of the branch that ran, in order: the key, nil when it does not exist.
    var ranges: [EtcdKeyValue?]
}

/// A minimal client of etcd v3's HTTP/JSON gateway (`http://HOST:PORT/v3/...`), the few calls
/// an election and a coordinator need, each bounded by a timeout.
///
/// Every failure becomes ``ReplicationError/coordination(_:)`` naming the member, the request
/// and what etcd answered, so a broker's log says which etcd to look at; cancellation of the
/// calling task stays a `CancellationError`. Requests go through ``etcdHTTPClient``.
///
/// Requests go to one member until it fails to answer (a refused connection, a timeout, a 5xx
/// answer such as a member cut off from its quorum), then to the next: a refused connection
/// moves on within the same request, a timeout at the next request, so one request never
/// waits more than `timeout`. Every request is safe to send again: the election and the
/// coordinator make each transaction a compare-and-set that recognises its own earlier effect.
struct EtcdClient: Sendable {
    /// The members and key prefix.
    let endpoint: EtcdEndpoint
    /// How long one request may take, connection included.
    let timeout: Duration
    private let http: HTTPClient
    /// The member requests go to now.
    private let current = MemberCursor()

    /// A client of `endpoint`'s gateways whose requests each last at most `timeout`.
    init(endpoint: EtcdEndpoint, timeout: Duration = .seconds(2)) {
        self.endpoint = endpoint
        self.timeout = timeout
        self.http = etcdHTTPClient
    }

    /// The member requests go to now, for tests and logs.
    var currentMember: EtcdEndpoint.Member { endpoint.members[current.index % endpoint.members.count] }

    /// The key, nil when it does not exist.
    func get(_ key: String) async throws -> EtcdKeyValue? {
        let response: EtcdRangeResponse = try await call("kv/range", body: EtcdRangeRequest(key: etcdBase64(key)), what: "kv/range of \(key)")
        return try response.kvs?.first.map { try keyValue($0, request: "kv/range of \(key)") }
    }

    /// Stores `value` at `key`, attached to `lease` when given; returns the store's revision.
    @discardableResult
    func put(_ key: String, value: Data, lease: Int64? = nil) async throws -> Int64 {
        let body = EtcdPutRequest(key: etcdBase64(key), value: value.base64EncodedString(), lease: lease.map(EtcdInt64.init))
        let response: EtcdWriteResponse = try await call("kv/put", body: body, what: "kv/put of \(key)")
        return response.header?.revision?.value ?? 0
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1).
    @discardableResult
    func delete(_ key: String) async throws -> Int64 {
        let response: EtcdWriteResponse = try await call("kv/deleterange", body: EtcdDeleteRangeRequest(key: etcdBase64(key)), what: "kv/deleterange of \(key)")
        return response.deleted?.value ?? 0
    }

    /// Runs `success` when every compare holds, else `failure`, as one atomic step in etcd.
    ///
    /// - Parameter what: what the transaction does, for error messages ("the claim of epoch 3").
    func txn(compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation], what: String) async throws -> EtcdTxnResult {
        let request = EtcdTxnRequest(compare: compare.map(Self.wire), success: success.map(Self.wire), failure: failure.map(Self.wire))
        let description = "kv/txn (\(what))"
        let response: EtcdTxnResponse = try await call("kv/txn", body: request, what: description)
        var ranges: [EtcdKeyValue?] = []
        for operation in response.responses ?? [] {
            if let range = operation.responseRange {
                ranges.append(try range.kvs?.first.map { try keyValue($0, request: description) })
            }
        }
        return EtcdTxnResult(succeeded: response.succeeded ?? false, revision: response.header?.revision?.value ?? 0, ranges: ranges)
    }

    /// Grants a lease of `ttlSeconds`; returns its id and the TTL etcd granted.
    func grantLease(ttlSeconds: Int64) async throws -> (id: Int64, ttlSeconds: Int64) {
        let what = "lease/grant of \(ttlSeconds) s"
        let response: EtcdLeaseGrantResponse = try await call("lease/grant", body: EtcdLeaseGrantRequest(TTL: EtcdInt64(ttlSeconds)), what: what)
        if let error = response.error, !error.isEmpty {
            throw ReplicationError.coordination("etcd at \(endpoint.address) refused \(what): \(error)")
        }
        guard let id = response.ID?.value, id != 0, let ttl = response.TTL?.value, ttl > 0 else {
            throw ReplicationError.coordination("etcd at \(endpoint.address) answered \(what) without a lease id or TTL")
        }
        return (id, ttl)
    }

    /// Renews `lease` once; returns the TTL it now has, or nil when etcd no longer knows it
    /// (revoked or expired: the leadership attached to it is lost).
    ///
    /// The gateway's keepalive is a stream; one POST answers one message, the first read here.
    func keepAlive(lease: Int64) async throws -> Int64? {
        let what = "lease/keepalive of lease \(lease)"
        let bytes = try await post("lease/keepalive", body: EtcdLeaseIDRequest(ID: EtcdInt64(lease)), what: what, timeout: timeout, firstLineOnly: true)
        let message: EtcdKeepAliveMessage = try decode(bytes, what: what)
        guard let result = message.result else {
            throw ReplicationError.coordination("etcd at \(endpoint.address) answered \(what) without a result: \(Self.text(bytes))")
        }
        guard let ttl = result.TTL?.value, ttl > 0 else { return nil }
        return ttl
    }

    /// Revokes `lease`, deleting the keys attached to it; a lease etcd no longer knows counts
    /// as revoked.
    func revokeLease(_ lease: Int64, timeout: Duration? = nil) async throws {
        let what = "lease/revoke of lease \(lease)"
        do {
            _ = try await post("lease/revoke", body: EtcdLeaseIDRequest(ID: EtcdInt64(lease)), what: what, timeout: timeout ?? self.timeout, firstLineOnly: false)
        } catch let error as ReplicationError where error.message.contains("requested lease not found") {
            return
        }
    }

    // MARK: - Transport

    /// POSTs `body` and decodes the answer as `Response`.
    private func call<Response: Decodable>(_ path: String, body: some Encodable, what: String) async throws -> Response {
        let bytes = try await post(path, body: body, what: what, timeout: timeout, firstLineOnly: false)
        return try decode(bytes, what: what)
    }

    /// POSTs `body` to `/v3/<path>` of the current member, moving on to the next while members
    /// refuse, and returns the answer's body (its first line only for a stream).
    private func post(_ path: String, body: some Encodable, what: String, timeout: Duration, firstLineOnly: Bool) async throws -> ByteBuffer {
        let members = endpoint.members
        let first = current.index
        var failures: [String] = []
        for offset in 0..<members.count {
            let index = (first + offset) % members.count
            do {
                let bytes = try await post(to: members[index], path, body: body, what: what, timeout: timeout, firstLineOnly: firstLineOnly)
                current.settle(on: index)
                return bytes
            } catch let failure as MemberFailure {
                failures.append(failure.error.message)
                current.moveOn(from: index, count: members.count)
                if failure.timedOut { break }
            }
        }
        if failures.count == 1 { throw ReplicationError.coordination(failures[0]) }
        throw ReplicationError.coordination("no etcd member answered: " + failures.joined(separator: "; "))
    }

    /// A member that did not answer (refused, timed out, or answered 5xx): the next one may.
    private struct MemberFailure: Error {
        var error: ReplicationError
        var timedOut: Bool
    }

    /// POSTs `body` to `/v3/<path>` of `member`, racing the request against `timeout`.
    private func post(
        to member: EtcdEndpoint.Member, _ path: String, body: some Encodable, what: String, timeout: Duration, firstLineOnly: Bool
    ) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: "http://\(member)/v3/\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        do {
            request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        } catch {
            throw ReplicationError.coordination("cannot encode \(what) for etcd at \(member): \(error)")
        }
        let http = self.http
        let prepared = request
        let address = member.description
        let limit = 4 << 20
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask {
                    let response = try await http.execute(prepared, timeout: TimeAmount(timeout))
                    var received = ByteBuffer()
                    for try await var chunk in response.body {
                        received.writeBuffer(&chunk)
                        guard received.readableBytes <= limit else {
                            throw ReplicationError.coordination("etcd at \(address) answered \(what) with more than \(limit) bytes")
                        }
                        if firstLineOnly, received.readableBytesView.contains(UInt8(ascii: "\n")) { break }
                    }
                    guard (200..<300).contains(response.status.code) else {
                        let error = ReplicationError.coordination("etcd at \(address) answered \(what) with HTTP \(response.status.code): \(Self.text(received))")
                        if response.status.code >= 500 { throw MemberFailure(error: error, timedOut: false) }
                        throw error
                    }
                    if firstLineOnly, let newline = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                        return received.getSlice(at: received.readerIndex, length: newline - received.readerIndex)
                    }
                    return received
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                if let first = try await group.next(), let bytes = first { return bytes }
                // The timeout won: cancel the request, and report why it got nowhere if the
                // client knows (the last connection error of a request still queued).
                group.cancelAll()
                var cause = ""
                do {
                    _ = try await group.next()
                } catch let error as HTTPClientError where error == .cancelled || error == .deadlineExceeded {
                } catch is CancellationError {
                } catch {
                    cause = " (\(error))"
                }
                throw MemberFailure(error: .coordination("cannot reach etcd at \(address) (\(what)): no answer within \(timeout)\(cause)"), timedOut: true)
            }
        } catch let error as ReplicationError {
            throw error
        } catch let failure as MemberFailure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw MemberFailure(error: .coordination("cannot reach etcd at \(address) (\(what)): no answer within \(timeout)"), timedOut: true)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw MemberFailure(error: .coordination("cannot reach etcd at \(address) (\(what)): \(error)"), timedOut: false)
        }
    }

    private func decode<Response: Decodable>(_ bytes: ByteBuffer, what: String) throws -> Response {
        do {
            return try JSONDecoder().decode(Response.self, from: bytes)
        } catch {
            throw ReplicationError.coordination("etcd at \(endpoint.address) answered \(what) with an unexpected body (\(error)): \(Self.text(bytes))")
        }
    }

    private func keyValue(_ wire: EtcdWireKeyValue, request: String) throws -> EtcdKeyValue {
        guard let key = wire.key.flatMap({ Data(base64Encoded: $0) }).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw ReplicationError.coordination("etcd at \(endpoint.address) answered \(request) with a key that is not base64: \(wire.key ?? "none")")
        }
        guard let value = Data(base64Encoded: wire.value ?? "") else {
            throw ReplicationError.coordination("etcd at \(endpoint.address) answered \(request) with a value of \(key) that is not base64")
        }
        return EtcdKeyValue(key: key, value: value, createRevision: wire.createRevision?.value ?? 0, modRevision: wire.modRevision?.value ?? 0, lease: wire.lease?.value ?? 0)
    }

    /// An answer's body for an error message: its text, cut at 500 characters.
    private static func text(_ bytes: ByteBuffer) -> String {
        let text = String(buffer: bytes).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(empty body)" : String(text.prefix(500))
    }

    private static func wire(_ compare: EtcdCompare) -> EtcdWireCompare {
        switch compare {
        case .createRevision(let key, let revision):
            EtcdWireCompare(target: "CREATE", key: etcdBase64(key), createRevision: EtcdInt64(revision))
        case .modRevision(let key, let revision):
            EtcdWireCompare(target: "MOD", key: etcdBase64(key), modRevision: EtcdInt64(revision))
        }
    }

    private static func wire(_ operation: EtcdOperation) -> EtcdWireRequestOp {
        switch operation {
        case .range(let key):
            EtcdWireRequestOp(requestRange: EtcdRangeRequest(key: etcdBase64(key)))
        case .put(let key, let value, let lease):
            EtcdWireRequestOp(requestPut: EtcdPutRequest(key: etcdBase64(key), value: value.base64EncodedString(), lease: lease.map(EtcdInt64.init)))
        case .deleteRange(let key):
            EtcdWireRequestOp(requestDeleteRange: EtcdDeleteRangeRequest(key: etcdBase64(key)))
        }
    }
}

/// Which member an ``EtcdClient`` asks, shared by its copies.
private final class MemberCursor: Sendable {
    private let current = Mutex(0)

    var index: Int { current.withLock { $0 } }

    /// `index` answered: stay with it.
    func settle(on index: Int) {
        current.withLock { $0 = index }
    }

    /// `index` did not answer: the next request tries the member after it, unless another
    /// request has moved on already.
    func moveOn(from index: Int, count: Int) {
        current.withLock { if $0 == index { $0 = (index + 1) % count } }
    }
}
