import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Polls `condition` every 100 ms for up to `limit` (60 s); fails with the brokers' logs otherwise.
func waitUntil(_ what: String, brokers: [NodeProcess], within limit: Duration = .seconds(60), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while try !condition() {
        for broker in brokers where !broker.isRunning {
            throw NodeTestError("\(broker.name) exited while waiting until \(what)\n\(broker.logTail())")
        }
        guard ContinuousClock.now < deadline else {
            throw NodeTestError("not within \(limit): \(what)\n" + brokers.map { $0.logTail() }.joined(separator: "\n"))
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// A blocking HTTP/1.1 client over a loopback socket: one request per connection
/// (`Connection: close`), the response read to the end.
enum LoopbackHTTP {
    struct Response: CustomStringConvertible {
        var status: Int
        var body: String
        var description: String { "\(status) \(body)" }
    }

    /// `GET path`, its JSON body decoded; throws unless the status is 200.
    static func get<Reply: Decodable>(_ type: Reply.Type, _ path: String, port: Int) throws -> Reply {
        let response = try request("GET", path, port: port)
        guard response.status == 200 else { throw NodeTestError("GET \(path) on port \(port): \(response)") }
        return try JSONDecoder().decode(type, from: Data(response.body.utf8))
    }

    static func request(_ method: String, _ path: String, body: [UInt8] = [], port: Int) throws -> Response {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw NodeTestError("socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            setsockopt(descriptor, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw NodeTestError("connect to 127.0.0.1:\(port) failed: errno \(errno)") }

        let head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var unsent = (Array(head.utf8) + body)[...]
        while !unsent.isEmpty {
            let written = unsent.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw NodeTestError("write to 127.0.0.1:\(port) failed: errno \(errno)") }
            unsent = unsent.dropFirst(written)
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw NodeTestError("read from 127.0.0.1:\(port) failed: errno \(errno)") }
            if count == 0 { break }
            received += buffer[..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") else {
            throw NodeTestError("not an HTTP response from 127.0.0.1:\(port): \(text.debugDescription)")
        }
        return Response(status: status, body: String(text[headEnd.upperBound...]))
    }
}
