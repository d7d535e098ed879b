import Foundation

/// A single-member etcd on loopback ports for tests of `BrokerReplicationEtcd`: its own data
/// directory, removed on ``stop()``, and ``pause()``/``resume()`` to freeze it the way a
/// stalled or partitioned etcd looks to a leader.
///
/// ```swift
/// let etcd = try await EtcdTestServer.start()
/// defer { etcd.stop() }
/// let election = try EtcdElection(endpoint: EtcdEndpoint(url: etcd.url(prefix: "/test")), nodeID: "a")
/// ```
///
/// It runs the `etcd` binary found on `PATH` (Debian's `etcd-server`, which `make test`
/// installs), listening on 127.0.0.1 only.
public final class EtcdTestServer: @unchecked Sendable {
    /// Errors of starting the server, with what to do about them.
    public struct StartError: Error, CustomStringConvertible {
        /// What failed.
        public let description: String
    }

    /// `127.0.0.1:PORT`, where the member serves clients (and its HTTP/JSON gateway).
    public let endpoint: String
    /// The client port.
    public let clientPort: Int
    /// The temporary directory holding the data directory and `etcd.log`.
    public let directory: String

    private let process: ChildProcess
    /// The member's name, unique to this server: how the readiness probe knows the etcd that
    /// answers on `clientPort` is this one, not another test's that took the port first.
    private let name: String
    private let lock = NSLock()
    private var stopped = false

    private init(process: ChildProcess, name: String, clientPort: Int, directory: String) {
        self.process = process
        self.name = name
        self.clientPort = clientPort
        self.endpoint = "127.0.0.1:\(clientPort)"
        self.directory = directory
    }

    deinit {
        stop()
    }

    /// Starts etcd on free loopback ports and waits (at most about 20 s) until it answers.
    ///
    /// - Throws: ``StartError`` when etcd is not installed, or does not answer in time (the
    ///   message holds the end of its log).
    public static func start() async throws -> EtcdTestServer {
        guard let binary = findBinary() else {
            throw StartError(description: "etcd not found on PATH: `make test` installs Debian's etcd-server")
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            let clientPort = try freePort()
            var peerPort = try freePort()
            while peerPort == clientPort { peerPort = try freePort() }
            let server = try launch(binary: binary, name: uniqueName("t"), clientPort: clientPort, peerPort: peerPort, initialCluster: nil)
            do {
                try await server.waitUntilReady()
                return server
            } catch {
                lastError = error
                server.stop()
                // A port taken between choosing and binding: try again with other ports.
            }
        }
        throw lastError ?? StartError(description: "etcd did not start")
    }

    /// Starts a cluster of `count` members on free loopback ports and waits (at most about
    /// 20 s) until every member answers: for tests of a node that must move to another member
    /// when its own stops answering.
    ///
    /// - Parameter count: how many members (3 for a cluster that survives one member down).
    /// - Returns: the members; stop each one.
    /// - Throws: ``StartError`` when etcd is not installed, or a member does not answer in time.
    public static func startCluster(members count: Int) async throws -> [EtcdTestServer] {
        guard let binary = findBinary() else {
            throw StartError(description: "etcd not found on PATH: `make test` installs Debian's etcd-server")
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            var ports: Set<Int> = []
            while ports.count < 2 * count { ports.insert(try freePort()) }
            let pairs = Array(ports.sorted()).chunked(by: 2)
            let names = pairs.indices.map { uniqueName("m\($0)") }
            let initialCluster = pairs.enumerated().map { "\(names[$0.offset])=http://127.0.0.1:\($0.element[1])" }.joined(separator: ",")
            var servers: [EtcdTestServer] = []
            do {
                for (index, pair) in pairs.enumerated() {
                    servers.append(try launch(binary: binary, name: names[index], clientPort: pair[0], peerPort: pair[1], initialCluster: initialCluster))
                }
                for server in servers { try await server.waitUntilReady() }
                return servers
            } catch {
                lastError = error
                for server in servers { server.stop() }
            }
        }
        throw lastError ?? StartError(description: "the etcd cluster did not start")
    }

    /// `etcd://HOST:PORT,HOST:PORT...<prefix>` naming every member of `members`.
    public static func url(of members: [EtcdTestServer], prefix: String) -> String {
        let path = prefix.hasPrefix("/") ? prefix : "/" + prefix
        return "etcd://" + members.map(\.endpoint).joined(separator: ",") + path
    }

    /// `etcd://127.0.0.1:PORT<prefix>`, the URL `EtcdEndpoint(url:)` parses.
    ///
    /// - Parameter prefix: the key prefix, e.g. `/test-fencing`; a test uses its own.
    public func url(prefix: String) -> String {
        let path = prefix.hasPrefix("/") ? prefix : "/" + prefix
        return "etcd://\(endpoint)\(path)"
    }

    /// Freezes etcd (SIGSTOP): connections stay open but nothing is answered, as with a
    /// stalled member; lease time does not pass inside it until ``resume()``.
    public func pause() {
        process.send(signal: SIGSTOP)
    }

    /// Lets a paused etcd go on (SIGCONT).
    public func resume() {
        process.send(signal: SIGCONT)
    }

    /// Ends etcd (SIGKILL: its data is thrown away, so nothing needs a clean shutdown), waits
    /// until it is dead and removes its directory; does nothing the second time.
    public func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        process.killAndWait()
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Starting

    private static func findBinary() -> String? {
        var candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/etcd" }
        candidates.append("/usr/bin/etcd")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs one member; `initialCluster` names every member of a cluster (nil: alone).
    private static func launch(binary: String, name: String, clientPort: Int, peerPort: Int, initialCluster: String?) throws -> EtcdTestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("brpl-etcd-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let client = "http://127.0.0.1:\(clientPort)"
        let peer = "http://127.0.0.1:\(peerPort)"
        let arguments = [
            "--name", name, "--data-dir", directory + "/data",
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initialCluster ?? "\(name)=\(peer)",
            // The same token for every member of one cluster, another for every cluster.
            "--initial-cluster-token", "brpl-test-\(initialCluster.map { String($0.hashValue) } ?? String(peerPort))",
            "--log-level", "error",
        ]
        let process: ChildProcess
        do {
            process = try ChildProcess(executable: binary, arguments: arguments, logPath: directory + "/etcd.log")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw StartError(description: "cannot run \(binary): \(error)")
        }
        return EtcdTestServer(process: process, name: name, clientPort: clientPort, directory: directory)
    }

    /// Polls `POST /v3/cluster/member/list` until this member answers, it exits, or 20 s pass.
    private func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw StartError(description: "etcd ended (\(process.termination)) before it answered: \(logTail())")
            }
            // Ready once it answers and its pid is known, so that pause() stops it at once.
            if process.processIdentifier != nil, await Self.probe(port: clientPort, member: name) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StartError(description: "etcd at \(endpoint) did not answer within 20 s: \(logTail())")
    }

    /// Whether `member` answers on `port`, on a Dispatch thread: a probe can block for a second while etcd
    /// starts, and the cooperative pool (two threads on a 2-core machine) must stay free for
    /// the code under test, such as a leader that must notice its own stalled disk in time.
    private static func probe(port: Int, member: String) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                // The member list says whose etcd this is; a range read, that it serves keys.
                let ours = post(port: port, path: "/v3/cluster/member/list", body: "{}").map { $0.contains("\"name\":\"\(member)\"") } ?? false
                continuation.resume(returning: ours && post(port: port, path: "/v3/kv/range", body: #"{"key":"AA=="}"#) != nil)
            }
        }
    }

    /// `base` and eight random hexadecimal digits: an etcd member name no other server has.
    private static func uniqueName(_ base: String) -> String {
        "\(base)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    private func logTail() -> String {
        let text = (try? String(contentsOfFile: directory + "/etcd.log", encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }

    /// A loopback port nothing listens on (the kernel just gave it to a socket that is closed
    /// again): where a test points a client that must find etcd unreachable.
    ///
    /// - Throws: ``StartError`` when no socket can be bound.
    public static func unusedLoopbackPort() throws -> Int {
        try freePort()
    }

    /// A port the kernel just gave a loopback socket bound to port 0.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw StartError(description: "socket failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw StartError(description: "cannot bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// One blocking HTTP/1.0 `POST` of `body` to `path` (1 s timeouts): the whole answer when
    /// it is `200`, else nil.
    private static func post(port: Int, path: String, body: String) -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: UInt16(port))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return nil }
        let request = "POST \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let sent = request.withCString { send(descriptor, $0, strlen($0), 0) }
        guard sent == request.utf8.count else { return nil }
        // HTTP/1.0: the answer ends when etcd closes the connection.
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < 64 * 1024 {
            let received = recv(descriptor, &buffer, buffer.count, 0)
            guard received > 0 else { break }
            answer += buffer[..<received]
        }
        let text = String(decoding: answer, as: UTF8.self)
        return text.hasPrefix("HTTP/1.0 200") || text.hasPrefix("HTTP/1.1 200") ? text : nil
    }
}

extension Array {
    /// Consecutive slices of `size` elements (the last may be shorter).
    fileprivate func chunked(by size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
