import BrokerReplication
import BrokerReplicationTesting
import Foundation
import Testing

@testable import BrokerReplicationEtcd

/// The gateway's quirks the client relies on: int64 as strings, base64 keys and values,
/// omitted zero fields, the keepalive stream's first message.
@Suite("EtcdClient", .serialized)
struct EtcdClientTests {
    @Test("range of a missing key is nil; put and range round-trip bytes, revisions and lease")
    func rangeAndPut() async throws {
        try await withEtcd { etcd in
            let client = EtcdClient(endpoint: try EtcdEndpoint(url: etcd.url(prefix: "/client")))
            let key = uniquePrefix("kv") + "/ключ"
            #expect(try await client.get(key) == nil)
            let value = Data([0, 1, 2, 255, 10, 13])
            let revision = try await client.put(key, value: value)
            let stored = try #require(try await client.get(key))
            #expect(stored == EtcdKeyValue(key: key, value: value, createRevision: revision, modRevision: revision, lease: 0))
            #expect(try await client.delete(key) == 1)
            #expect(try await client.get(key) == nil)
        }
    }

    @Test("a failed transaction answers without `succeeded` and runs the failure branch")
    func failedTxn() async throws {
        try await withEtcd { etcd in
            let client = EtcdClient(endpoint: try EtcdEndpoint(url: etcd.url(prefix: "/client")))
            let key = uniquePrefix("txn")
            let revision = try await client.put(key, value: Data("v".utf8))
            let failed = try await client.txn(
                compare: [.createRevision(key: key, equals: 0)],
                success: [.put(key: key, value: Data("w".utf8), lease: nil)],
                failure: [.range(key: key), .range(key: key + "/missing")],
                what: "test"
            )
            #expect(!failed.succeeded)
            #expect(failed.ranges.count == 2)
            #expect(failed.ranges[0]?.value == Data("v".utf8))
            #expect(failed.ranges[1] == nil)
            let succeeded = try await client.txn(
                compare: [.modRevision(key: key, equals: revision)],
                success: [.put(key: key, value: Data("w".utf8), lease: nil)],
                failure: [],
                what: "test"
            )
            #expect(succeeded.succeeded)
            #expect(try #require(try await client.get(key)).modRevision == succeeded.revision)
        }
    }

    @Test("a lease's keepalive answers its TTL until it is revoked, then none")
    func leases() async throws {
        try await withEtcd { etcd in
            let client = EtcdClient(endpoint: try EtcdEndpoint(url: etcd.url(prefix: "/client")))
            let lease = try await client.grantLease(ttlSeconds: 5)
            #expect(lease.ttlSeconds == 5)
            #expect(try await client.keepAlive(lease: lease.id) == 5)
            try await client.revokeLease(lease.id)
            #expect(try await client.keepAlive(lease: lease.id) == nil)
            // Revoking a lease etcd no longer knows is not an error.
            try await client.revokeLease(lease.id)
        }
    }

    @Test("an error answer is reported with etcd's body")
    func errorBody() async throws {
        try await withEtcd { etcd in
            let client = EtcdClient(endpoint: try EtcdEndpoint(url: etcd.url(prefix: "/client")))
            let error = await replicationError { try await client.put(uniquePrefix("err"), value: Data("v".utf8), lease: 12345) }
            #expect(error?.code == .coordination)
            #expect(error?.message.contains(etcd.endpoint) == true)
            #expect(error?.message.contains("kv/put") == true)
            #expect(error?.message.contains("requested lease not found") == true, "\(error?.message ?? "")")
        }
    }

    @Test("a frozen etcd: the request times out with a message naming the member")
    func timeout() async throws {
        try await withEtcd { etcd in
            let client = EtcdClient(endpoint: try EtcdEndpoint(url: etcd.url(prefix: "/client")), timeout: .milliseconds(500))
            etcd.pause()
            defer { etcd.resume() }
            let error = await replicationError { _ = try await client.get("/x") }
            #expect(error?.code == .coordination)
            #expect(error?.message.contains("cannot reach etcd at \(etcd.endpoint) (kv/range of /x)") == true, "\(error?.message ?? "")")
        }
    }
}
