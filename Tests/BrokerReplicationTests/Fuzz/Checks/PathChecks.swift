@_spi(Benchmarks) @testable import BrokerReplication

/// Relative paths through the validator, and the batch decoder's cache of validated paths.
enum PathChecks {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        guard let string = String(validating: input, as: UTF8.self),
            let path = try? ReplicatedPath(validating: string, maximumBytes: fuzzLimits.maximumPathBytes)
        else { return }
        try ensureInsideDataDirectory(path)
        // The decoder's cache must answer as a fresh validation does, hit or miss.
        var cache = BatchDecoder.PathCache()
        for _ in 0..<2 {
            let cached = try? input.withUnsafeBytes { bytes throws(WireError) in
                try cache.path(for: bytes) { bytes throws(WireError) in
                    try ReplicatedPath(validating: String(decoding: bytes, as: UTF8.self), maximumBytes: fuzzLimits.maximumPathBytes)
                }
            }
            try ensure(cached == path && cached.map { Array($0.string.utf8) } == input, "the path cache returned \(String(describing: cached)) for \(path)")
        }
    }

    /// An oracle that does not share the validator's code: resolved component by component
    /// from the data directory, as the file system would (symlinks aside, which are checked
    /// where a path is opened), the path never climbs above it, names nothing but a file
    /// below it, and stays out of the module's own `.brpl` directory.
    static func ensureInsideDataDirectory(_ path: ReplicatedPath) throws(FuzzViolation) {
        let bytes = Array(path.string.utf8)
        try ensure(!bytes.isEmpty && bytes.count <= fuzzLimits.maximumPathBytes, "path of \(bytes.count) bytes accepted")
        try ensure(!bytes.contains(0), "path with a NUL byte accepted: \(path)")
        let components = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var depth = 0
        for component in components {
            switch Array(component) {
            case []: throw FuzzViolation(description: "path with an empty component (absolute, \"//\" or a trailing \"/\") accepted: \(path)")
            case Array(".".utf8): throw FuzzViolation(description: "path with \".\" accepted: \(path)")
            case Array("..".utf8): depth -= 1
            default: depth += 1
            }
            try ensure(depth > 0, "path that leaves the data directory accepted: \(path)")
            try ensure(component.count <= ReplicatedPath.maximumComponentBytes, "component of \(component.count) bytes accepted")
        }
        try ensure(Array(components[0]) != Array(".brpl".utf8), "path into .brpl accepted: \(path)")
    }
}
