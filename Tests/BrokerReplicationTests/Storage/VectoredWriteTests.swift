import BrokerReplicationTesting
import Foundation
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

@Suite("Vectored write")
struct VectoredWriteTests {
    /// More buffers than one `pwritev` takes (IOV_MAX), empty ones among them, at an offset.
    @Test func writesEveryBufferInOrder() throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let directory = try DataDirectory(path: cluster.root + "/vectored")
        let handle = try directory.openFile(try ReplicatedPath("file"), create: true)
        let pieces: [[UInt8]] = (0..<3_000).map { index in index % 7 == 0 ? [] : Array(repeating: UInt8(truncatingIfNeeded: index), count: index % 13) }
        let expected = Data(repeating: 0, count: 10) + Data(pieces.joined())
        let buffers = pieces.map { piece in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: piece.count, alignment: 1)
            buffer.copyBytes(from: piece)
            return buffer
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        try handle.write(buffers.map { UnsafeRawBufferPointer($0) }, at: 10)
        #expect(try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/vectored/file")) == expected)
    }
}
