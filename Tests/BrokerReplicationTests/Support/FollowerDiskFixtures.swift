import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

// Records and bytes for the follower's disk-side suites (state file, record applier, full-sync
// receiver): short builders, so that a test reads as the records it applies.

func append(_ path: String, _ offset: UInt64, _ bytes: [UInt8]) -> ReplicationRecord {
    .append(path: TestFrames.path(path), offset: offset, bytes: ByteBuffer(bytes: bytes))
}

func replace(_ path: String, _ offset: UInt64, _ bytes: [UInt8], _ flags: ReplicationRecord.ReplaceFlags) -> ReplicationRecord {
    .replace(path: TestFrames.path(path), offset: offset, chunk: ByteBuffer(bytes: bytes), flags: flags)
}

func delete(_ path: String) -> ReplicationRecord {
    .delete(path: TestFrames.path(path))
}

/// True when the follower refused what it was given as not fitting its files (it would resync).
func isInconsistent(_ error: ApplyError?) -> Bool {
    if case .inconsistent? = error { true } else { false }
}

/// Deterministic bytes that LZ4 can still compress a little.
func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { index in
        if index % 7 == 0 { return UInt8(truncatingIfNeeded: index) }
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
