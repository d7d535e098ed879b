import BrokerReplication
import Foundation
import HeavyTestGate
import Logging
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// "An ack means durable", with a real follower process: SIGKILL it the moment the leader has
/// seen its ack, and every acked record must already be in its files. Then it restarts on the
/// same directory, resumes, and converges.
@Suite("Ack durability: follower process killed right after it acked", .serialized, .heavy)
struct AckDurabilityProcessTests {
    /// Where one record went: the leader tells the LSN, the producer knows the rest.
    struct Written {
        var path: String
        var offset: Int
        var bytes: [UInt8]
    }

    final class Ledger: Sendable {
        private let records = Mutex<[UInt64: Written]>([:])
        private let stopped = Mutex(false)
        var isStopped: Bool { stopped.withLock { $0 } }
        func stop() { stopped.withLock { $0 = true } }
        func add(_ lsn: UInt64, _ written: Written) { records.withLock { $0[lsn] = written } }
        func upTo(_ lsn: UInt64) -> [(UInt64, Written)] { records.withLock { $0.filter { $0.key <= lsn }.map { ($0.key, $0.value) } } }
    }

    @Test func everyAckedRecordIsInTheFilesOfAFollowerKilledRightAfterItsAck() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ack-durability-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretText = "ack-durability-test-shared-secret-42"
        let secretFile = root + "/secret"
        try Data(secretText.utf8).write(to: URL(fileURLWithPath: secretFile))

        var configuration = ReplicationLeaderConfiguration(dataDirectory: root + "/leader", clusterID: "ack", nodeID: "leader")
        configuration.ackTimeout = .seconds(10)
        var quiet = Logger(label: "ack-durability")
        quiet.logLevel = .error
        let leader = try ReplicationLeader(configuration: configuration, secret: try SharedSecret(bytes: Array(secretText.utf8)), logger: quiet)
        let serving = Task { try await leader.run() }
        defer { serving.cancel() }
        let port = try await leader.listeningPort()

        var follower: NodeProcess?
        func startFollower(run: Int) throws {
            follower = try NodeProcess("f1-run\(run)", arguments: [
                "follower", "--data-dir", root + "/f1", "--leader", "127.0.0.1:\(port)", "--secret-file", secretFile,
                "--cluster-id", "ack", "--node-id", "f1",
            ], directory: root)
        }
        defer { follower?.killIfRunning() }
        func ackedLSN() -> UInt64? { leader.status().followers.first { $0.nodeID == "f1" && $0.state == .live }?.ackedLSN }

        // Producers append numbered records to 8 files until told to stop.
        let ledger = Ledger()
        let producing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for producer in 0..<4 {
                    group.addTask {
                        var sizes: [String: Int] = [:]
                        var sequence = 0
                        while !ledger.isStopped, sequence < 400_000 {
                            let path = "p\(producer)/segment-\(sequence % 2)"
                            let bytes = Array("\(producer):\(sequence):\(String(repeating: "x", count: sequence % 61))\n".utf8)
                            let lsn = try await leader.append(to: path, bytes: bytes)
                            ledger.add(lsn, Written(path: path, offset: sizes[path, default: 0], bytes: bytes))
                            sizes[path, default: 0] += bytes.count
                            sequence += 1
                            if sequence % 32 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }

        var checked: [UInt64] = []
        for run in 1...3 {
            try startFollower(run: run)
            // Kill at the first ack above what the last run had acked: the ack is on the wire,
            // the follower has not had time to do anything after it.
            let floor = (checked.last ?? 0) + 1_000
            let deadline = ContinuousClock.now + .seconds(120)
            var seen: UInt64 = 0
            while ContinuousClock.now < deadline {
                if let acked = ackedLSN(), acked >= floor {
                    seen = acked
                    break
                }
                try await Task.sleep(for: .microseconds(200))
            }
            follower!.send(signal: SIGKILL)
            #expect(try await follower!.waitForExit(timeout: .seconds(30)) == nil, "killed by the signal")
            try #require(seen >= floor, "no ack above LSN \(floor) within 120 s\n\(follower!.logTail())")
            // An ack may have landed between the poll and the kill: count it too.
            let acked = max(seen, leader.status().followers.first { $0.nodeID == "f1" }?.ackedLSN ?? seen)

            var missing: [UInt64] = []
            for (lsn, written) in ledger.upTo(acked) {
                let url = URL(fileURLWithPath: root + "/f1/" + written.path)
                guard let handle = try? Foundation.FileHandle(forReadingFrom: url) else {
                    missing.append(lsn)
                    continue
                }
                try handle.seek(toOffset: UInt64(written.offset))
                let found = try handle.read(upToCount: written.bytes.count).map(Array.init) ?? []
                try handle.close()
                if found != written.bytes { missing.append(lsn) }
            }
            #expect(missing.isEmpty, "run \(run): \(missing.count) acked records (LSN ≤ \(acked)) missing from the killed follower's files, first \(missing.sorted().prefix(5))")
            checked.append(acked)
        }

        ledger.stop()
        try await producing.value
        leader.flush()
        try startFollower(run: 4)
        let last = leader.lastLSN
        let converged = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < converged, (ackedLSN() ?? 0) < last {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect((ackedLSN() ?? 0) >= last, "the restarted follower caught up to LSN \(last)\n\(follower!.logTail())")
        #expect(try dataFiles(under: root + "/f1") == dataFiles(under: root + "/leader"), "byte-identical after the restarts")
        print("ack durability: killed after acks at LSNs \(checked); converged at \(last)")
    }
}
