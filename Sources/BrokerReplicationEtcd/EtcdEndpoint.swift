import BrokerReplication

/// Where an etcd cluster's HTTP/JSON gateways listen, and under which key prefix this
/// cluster's election and state live, parsed from one configuration value so a broker's
/// settings need a single string (`etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`).
///
/// Name every member of a production etcd cluster: a node asks one member at a time and moves
/// to the next when that one does not answer, so one etcd member down is no outage.
public struct EtcdEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// One etcd member's client address.
    public struct Member: Sendable, Equatable, CustomStringConvertible {
        /// The member's host name or address (IPv6 without brackets).
        public var host: String
        /// The member's client port (2379 by default in etcd itself).
        public var port: Int

        /// A member at `host:port`.
        ///
        /// - Parameters:
        ///   - host: the member's host name or address.
        ///   - port: its client port.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `HOST:PORT` (an IPv6 host in brackets), the form error messages name it by.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The prefix used when the URL names none: one etcd can then still serve other
    /// applications without their keys colliding with ours.
    public static let defaultPrefix = "/brokerreplication"

    /// The members, in the order a node tries them; never empty.
    public var members: [Member]
    /// The key prefix, starting with `/` and without a trailing slash, e.g. `/brokerreplication`;
    /// several clusters sharing one etcd each use their own.
    public var prefix: String

    /// An endpoint of one member.
    ///
    /// - Parameters:
    ///   - host: the etcd member's host name or address.
    ///   - port: its client port.
    ///   - prefix: the key prefix (default ``defaultPrefix``); a trailing slash is dropped and a
    ///     leading one added when missing.
    public init(host: String, port: Int, prefix: String = EtcdEndpoint.defaultPrefix) {
        self.init(members: [Member(host: host, port: port)], prefix: prefix)
    }

    /// An endpoint of several members, tried in this order.
    ///
    /// - Parameters:
    ///   - members: the etcd members' client addresses; at least one.
    ///   - prefix: the key prefix (default ``defaultPrefix``).
    public init(members: [Member], prefix: String = EtcdEndpoint.defaultPrefix) {
        precondition(!members.isEmpty, "an etcd endpoint needs at least one member")
        self.members = members
        self.prefix = Self.normalized(prefix: prefix)
    }

    /// Parses `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`, e.g.
    /// `etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/brokers/orders`.
    ///
    /// A host may be an IPv6 address in brackets (`etcd://[::1]:2379`). Without a prefix, or
    /// with just `/`, the prefix is ``defaultPrefix``.
    ///
    /// - Parameter url: the configuration value.
    /// - Throws: ``ReplicationError`` with code ``ReplicationError/Code/invalidConfiguration``
    ///   naming the value and what is wrong with it (scheme, host, port).
    public init(url: String) throws(ReplicationError) {
        let scheme = "etcd://"
        guard url.hasPrefix(scheme) else {
            throw .invalidConfiguration("etcd endpoint \"\(url)\": must start with etcd:// (etcd://HOST:PORT[,HOST:PORT...][/PREFIX])")
        }
        let rest = url.dropFirst(scheme.count)
        let authorities: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authorities = rest[..<slash]
            path = rest[slash...]
        } else {
            authorities = rest
            path = ""
        }
        var members: [Member] = []
        for authority in authorities.split(separator: ",", omittingEmptySubsequences: false) {
            members.append(try Self.member(authority, in: url))
        }
        guard !path.contains(where: { $0 == "?" || $0 == "#" || $0.isWhitespace }) else {
            throw .invalidConfiguration("etcd endpoint \"\(url)\": prefix \"\(path)\" must not contain ?, # or spaces")
        }
        self.init(members: members, prefix: String(path))
    }

    /// One `HOST:PORT` of the URL.
    private static func member(_ authority: Substring, in url: String) throws(ReplicationError) -> Member {
        let host: Substring
        let portText: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw .invalidConfiguration("etcd endpoint \"\(url)\": an IPv6 host needs a closing ]")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterClose = authority[authority.index(after: close)...]
            guard afterClose.hasPrefix(":") else {
                throw .invalidConfiguration("etcd endpoint \"\(url)\": missing :PORT after the host")
            }
            portText = afterClose.dropFirst()
        } else {
            guard let colon = authority.lastIndex(of: ":") else {
                throw .invalidConfiguration("etcd endpoint \"\(url)\": missing :PORT after the host \"\(authority)\" (etcd://HOST:PORT[,HOST:PORT...][/PREFIX])")
            }
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "@" || $0 == "?" || $0 == "#" || $0.isWhitespace }) else {
            throw .invalidConfiguration("etcd endpoint \"\(url)\": host \"\(host)\" is empty or malformed")
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw .invalidConfiguration("etcd endpoint \"\(url)\": port \"\(portText)\" must be a number in 1...65535")
        }
        return Member(host: String(host), port: port)
    }

    /// The members as `HOST:PORT,HOST:PORT`, the form error messages name the cluster by.
    public var address: String {
        members.map(\.description).joined(separator: ",")
    }

    /// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`, which ``init(url:)`` parses back to this endpoint.
    public var description: String { "etcd://\(address)\(prefix)" }

    /// Slashes trimmed from the end and one put at the front; the default when nothing remains.
    private static func normalized(prefix: String) -> String {
        var trimmed = Substring(prefix)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        return trimmed.isEmpty ? defaultPrefix : "/" + trimmed
    }
}
