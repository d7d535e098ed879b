import Crypto
import Foundation

/// The epochs this data directory served as a leader: each epoch's first LSN and, once it
/// ended cleanly, its last, like Kafka's leader-epoch checkpoint.
///
/// LSNs start at 1 in every epoch. An epoch that ended cleanly (a graceful stop, or the
/// position a promoted follower held) left the files exactly as of its last LSN; if no
/// epoch after it changed anything, the next leader starts from those same files. A
/// follower holding exactly that position then holds the new leader's files and resumes at
/// LSN 1 of the new epoch without a full sync (``startsFrom(epoch:lastLSN:current:)``).
struct EpochHistory: Codable, Equatable, Sendable {
    struct Epoch: Codable, Equatable, Sendable {
        var epoch: UInt64
        var firstLSN: UInt64
        /// The last LSN given in the epoch (0: none); nil while it runs or when it did not
        /// end cleanly.
        var lastLSN: UInt64?
        /// A digest of every file's path and size at `lastLSN`, checked when the next leader
        /// starts: a change made after the epoch ended voids its end.
        var filesDigest: String?
    }

    /// The most epochs kept; older ones are dropped.
    static let kept = 1000

    private(set) var epochs: [Epoch] = []

    /// Records that `epoch` started, at LSN 1.
    mutating func begin(_ epoch: UInt64) {
        epochs.removeAll { $0.epoch >= epoch }
        epochs.append(Epoch(epoch: epoch, firstLSN: 1))
        if epochs.count > Self.kept { epochs.removeFirst(epochs.count - Self.kept) }
    }

    /// Records that `epoch` ended cleanly at `lastLSN` with the files described by `filesDigest`.
    mutating func end(_ epoch: UInt64, lastLSN: UInt64, filesDigest: String?) {
        if let index = epochs.firstIndex(where: { $0.epoch == epoch }) {
            epochs[index].lastLSN = lastLSN
            epochs[index].filesDigest = filesDigest
        } else {
            epochs.append(Epoch(epoch: epoch, firstLSN: 1, lastLSN: lastLSN, filesDigest: filesDigest))
            epochs.sort { $0.epoch < $1.epoch }
        }
    }

    /// Voids the end of the newest epoch unless the files still match its digest.
    mutating func checkLastEnd(againstFilesDigest digest: String) -> Bool {
        guard let last = epochs.indices.last, epochs[last].lastLSN != nil else { return true }
        if epochs[last].filesDigest == nil || epochs[last].filesDigest == digest { return true }
        epochs[last].lastLSN = nil
        return false
    }

    /// Whether a follower whose data is `epoch` through `lastLSN` holds exactly the files the
    /// leader of `current` started from: `epoch` ended cleanly at `lastLSN`, and every epoch
    /// between it and `current` ended cleanly without a change.
    func startsFrom(epoch: UInt64, lastLSN: UInt64, current: UInt64) -> Bool {
        guard epoch > 0, epoch < current, current - epoch <= UInt64(epochs.count) else { return false }
        guard let ended = epochs.first(where: { $0.epoch == epoch }), ended.lastLSN == lastLSN else { return false }
        for between in (epoch + 1)..<current {
            guard let entry = epochs.first(where: { $0.epoch == between }), entry.lastLSN == 0 else { return false }
        }
        return true
    }

    /// A digest of the files' paths and sizes, the same however they are listed.
    static func filesDigest(_ files: [(path: ReplicatedPath, size: Int)]) -> String {
        var hash = SHA256()
        for file in files.sorted(by: { $0.path.string < $1.path.string }) {
            hash.update(data: Data("\(file.path.string)\0\(file.size)\n".utf8))
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// ``EpochHistory`` in `.brpl/epoch-history.json`, replaced whole and durably on every change.
///
/// A follower removes it when it starts: a directory that follows another leader no longer
/// holds what it held as a leader. ``ReplicationFollower/promote(coordinator:force:)``
/// writes it again with the promoted position as the end of the epoch it followed.
struct EpochHistoryFile {
    static let rawPath = DataDirectory.reservedDirectory + "/epoch-history.json"
    private static let temporaryPath = rawPath + ".new"

    let directory: DataDirectory

    /// The stored history; an empty one when there is none or it cannot be read (which only
    /// costs a full sync where a resume was possible).
    func load() -> (history: EpochHistory, problem: String?) {
        do {
            guard let file = try directory.openForReading(ReplicatedPath(alreadyValidated: Self.rawPath)) else { return (EpochHistory(), nil) }
            let size = try file.size()
            var bytes = [UInt8](repeating: 0, count: size)
            let read = try bytes.withUnsafeMutableBytes { buffer throws(StorageError) in try file.read(into: buffer, at: 0) }
            return (try JSONDecoder().decode(EpochHistory.self, from: Data(bytes.prefix(read))), nil)
        } catch {
            return (EpochHistory(), "\(Self.rawPath) cannot be read (\(error)); followers of earlier epochs get a full sync")
        }
    }

    func store(_ history: EpochHistory) throws(StorageError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = (try? encoder.encode(history)) ?? Data()
        let file = try directory.openFile(rawPath: Self.temporaryPath, create: true, truncate: true)
        let written = bytes.withUnsafeBytes { buffer in Result { () throws(StorageError) in try file.write(buffer, at: 0) } }
        try written.get()
        try file.sync()
        try directory.rename(rawPath: Self.temporaryPath, over: ReplicatedPath(alreadyValidated: Self.rawPath), durable: true)
    }

    func remove() throws(StorageError) {
        try directory.removeFile(rawPath: Self.rawPath)
    }
}
