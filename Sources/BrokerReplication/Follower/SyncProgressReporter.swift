import NIOCore
import Synchronization

/// Tells the leader, every ``SyncProgressReport/interval`` while a full sync runs, how many
/// bytes this follower has checked of its own files and received of the leader's.
///
/// The leader keeps a syncing follower only while these totals (or its own chunk writes)
/// move, so a sync may take as long as it needs and a stuck one still ends. The reports go
/// out from their own task: while the follower checksums its files or installs the sync it
/// reads nothing from the leader, and must not look dead.
final class SyncProgressReporter: Sendable {
    private let checked = Atomic<UInt64>(0)
    private let received = Atomic<UInt64>(0)

    func checked(_ bytes: Int) {
        checked.add(UInt64(bytes), ordering: .relaxed)
    }

    func received(_ bytes: Int) {
        received.add(UInt64(bytes), ordering: .relaxed)
    }

    /// Sends reports until cancelled; a failed write ends it (the connection is closing).
    func run(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, allocator: ByteBufferAllocator) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: SyncProgressReport.interval)
                let report = SyncProgressReport(bytesChecked: checked.load(ordering: .relaxed), bytesReceived: received.load(ordering: .relaxed))
                try await outbound.write(WireMessage.syncProgress(report).encoded(using: allocator))
            } catch {
                return
            }
        }
    }
}
