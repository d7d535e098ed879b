import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

/// The follower's position file against a real directory: it round-trips, and any damage
/// reads as no position at all.
@Suite("Follower state file")
struct FollowerStateFileTests {
    @Test func stateFileStartsAtNoneAndRoundTrips() throws {
        try withTemporaryRoot { root in
            let directory = try DataDirectory(path: root.appendingPathComponent("data").path)
            let stateFile = try FollowerStateFile(directory: directory)
            #expect(stateFile.load() == .none)

            let position = FollowerPosition(epoch: 7, lastDurableLSN: 0x0102_0304_0506_0708)
            try stateFile.store(position, durable: true)
            #expect(stateFile.load() == position)
            #expect(try FollowerStateFile(directory: directory).load() == position, "a reopened file reads the same")

            let later = FollowerPosition(epoch: 8, lastDurableLSN: 1)
            try stateFile.store(later, durable: false)
            #expect(stateFile.load() == later)
            let bytes = try contents(root.appendingPathComponent("data/.brpl/follower-state"))
            #expect(bytes.count == 24, "overwritten in place, never grown")
            #expect(bytes.suffix(4) == [0, 0, 0, 0])
        }
    }

    enum StateDamage: String, CaseIterable, Sendable {
        case empty, short, flippedEpochBit, flippedLSNBit, flippedChecksumBit
    }

    @Test(arguments: StateDamage.allCases)
    func damagedStateFileReadsAsNone(damage: StateDamage) throws {
        try withTemporaryRoot { root in
            let directory = try DataDirectory(path: root.appendingPathComponent("data").path)
            try FollowerStateFile(directory: directory).store(FollowerPosition(epoch: 3, lastDurableLSN: 99), durable: true)
            let file = root.appendingPathComponent("data/.brpl/follower-state")
            var bytes = try contents(file)
            switch damage {
            case .empty: bytes = []
            case .short: bytes = Array(bytes.prefix(20))
            case .flippedEpochBit: bytes[7] ^= 0x01
            case .flippedLSNBit: bytes[8] ^= 0x80
            case .flippedChecksumBit: bytes[19] ^= 0x10
            }
            try Data(bytes).write(to: file)
            #expect(try FollowerStateFile(directory: directory).load() == .none)
        }
    }
}
