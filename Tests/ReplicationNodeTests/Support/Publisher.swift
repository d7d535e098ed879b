import Foundation
import Synchronization

/// A client that publishes with confirms to one node, one message at a time, from its own
/// thread, and remembers what each request got.
final class Publisher: Sendable {
    struct Sent: Sendable {
        var queue: String
        var message: [UInt8]
        var sentAt: ContinuousClock.Instant
        /// The HTTP status, nil when the connection failed.
        var status: Int?
    }

    static let queues = ["orders", "audit", "billing"]
    private let sent = Mutex<[Sent]>([])
    private let stopped = Atomic<Bool>(false)
    private let port: Int
    private let tag: String

    init(port: Int, tag: String) {
        self.port = port
        self.tag = tag
    }

    /// Publishes until ``stop()``, `limit` messages, or the first failed connection.
    func start(limit: Int = 20_000) -> Task<Void, Never> {
        Task.detached { [self] in
            for index in 0..<limit where !stopped.load(ordering: .relaxed) {
                let queue = Self.queues[index % Self.queues.count]
                let message = Array("\(tag) message \(index) ".utf8) + Array(repeating: UInt8(ascii: "a") + UInt8(index % 26), count: index * 37 % 300)
                let sentAt = ContinuousClock.now
                let response = try? LoopbackHTTP.request("POST", "/queues/\(queue)", body: message, port: port)
                sent.withLock { $0.append(Sent(queue: queue, message: message, sentAt: sentAt, status: response?.status)) }
                if response == nil { break }
                if response?.status != 200 { try? await Task.sleep(for: .milliseconds(20)) }
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    var all: [Sent] { sent.withLock { $0 } }

    /// The confirmed messages of each queue, in the order they were sent.
    var confirmed: [String: [[UInt8]]] {
        all.filter { $0.status == 200 }.reduce(into: [:]) { $0[$1.queue, default: []].append($1.message) }
    }

    var confirmedCount: Int { all.count { $0.status == 200 } }
}
