import BrokerReplication
import Testing

@testable import BrokerReplicationEtcd

@Suite("EtcdEndpoint", .serialized)
struct EtcdEndpointTests {
    @Test("host and port without a prefix take the default prefix")
    func defaultPrefix() throws {
        let endpoint = try EtcdEndpoint(url: "etcd://127.0.0.1:2379")
        #expect(endpoint == EtcdEndpoint(host: "127.0.0.1", port: 2379, prefix: "/brokerreplication"))
        #expect(endpoint.address == "127.0.0.1:2379")
        #expect(try EtcdEndpoint(url: "etcd://127.0.0.1:2379/").prefix == "/brokerreplication")
    }

    @Test("a prefix loses its trailing slashes and round-trips through description")
    func prefix() throws {
        let endpoint = try EtcdEndpoint(url: "etcd://etcd.internal:23790/brokers/orders/")
        #expect(endpoint.members == [EtcdEndpoint.Member(host: "etcd.internal", port: 23790)])
        #expect(endpoint.prefix == "/brokers/orders")
        #expect(endpoint.description == "etcd://etcd.internal:23790/brokers/orders")
        #expect(try EtcdEndpoint(url: endpoint.description) == endpoint)
    }

    @Test("an IPv6 host in brackets")
    func ipv6() throws {
        let endpoint = try EtcdEndpoint(url: "etcd://[::1]:2379/x")
        #expect(endpoint.members.first?.host == "::1")
        #expect(endpoint.address == "[::1]:2379")
        #expect(endpoint.prefix == "/x")
    }

    @Test("several members, tried in the order given")
    func members() throws {
        let endpoint = try EtcdEndpoint(url: "etcd://10.0.0.1:2379,[::1]:2380,etcd-c:2381/orders")
        #expect(endpoint.members.map(\.description) == ["10.0.0.1:2379", "[::1]:2380", "etcd-c:2381"])
        #expect(endpoint.address == "10.0.0.1:2379,[::1]:2380,etcd-c:2381")
        #expect(endpoint.prefix == "/orders")
        #expect(try EtcdEndpoint(url: endpoint.description) == endpoint)
    }

    @Test(
        "a malformed URL is refused with an error naming it",
        arguments: [
            "http://127.0.0.1:2379",
            "127.0.0.1:2379",
            "etcd://127.0.0.1",
            "etcd://127.0.0.1:",
            "etcd://127.0.0.1:0",
            "etcd://127.0.0.1:65536",
            "etcd://127.0.0.1:port",
            "etcd://:2379",
            "etcd://[::1/x",
            "etcd://127.0.0.1:2379/a b",
            "etcd://127.0.0.1:2379,/x",
            "etcd://127.0.0.1:2379,127.0.0.2/x",
        ]
    )
    func malformed(url: String) {
        #expect {
            try EtcdEndpoint(url: url)
        } throws: { error in
            guard let error = error as? ReplicationError else { return false }
            return error.code == .invalidConfiguration && error.message.contains("\"\(url)\"")
        }
    }
}
