import NIOCore

@_spi(Benchmarks) @testable import BrokerReplication

/// A sync manifest frame's body through its decoder.
enum SyncManifestChecks {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let body = ByteBuffer(bytes: input)
        guard case .syncManifest(let firstIndex, let entries)? = try? WireMessage(decoding: Frame(type: .syncManifest, body: body), limits: fuzzLimits)
        else { return }
        try check(entries)
        var encoded = ByteBuffer()
        WireMessage.syncManifest(firstIndex: firstIndex, entries: entries).write(to: &encoded)
        try ensure(encoded.getSlice(at: Frame.headerBytes, length: encoded.readableBytes - Frame.headerBytes) == body, "manifest re-encodes to another body")
    }

    /// Every entry names a file inside the data directory, with one checksum per chunk of a
    /// size a file can have.
    static func check(_ entries: [SyncManifestEntry]) throws(FuzzViolation) {
        for entry in entries {
            try PathChecks.ensureInsideDataDirectory(entry.path)
            try ensure(entry.size <= UInt64(Int64.max), "\(entry.path) of \(entry.size) bytes accepted")
            let chunks = SyncManifestEntry.chunkCount(forSize: entry.size)
            try ensure(entry.chunkChecksums.count == chunks, "\(entry.path): \(entry.chunkChecksums.count) checksums for \(chunks) chunks")
        }
    }
}
