// swift-tools-version:6.1
import PackageDescription

// The micro-benchmarks are their own package so that a broker embedding BrokerReplication
// never builds package-benchmark. Run them with `make bench-micro` (see Docs/Performance.md).
let package = Package(
    name: "BrokerReplicationBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, because a path dependency is otherwise known by its directory's name, which
        // depends on where the repository was cloned.
        .package(name: "BrokerReplication", path: ".."),
        // The default traits would add the Swift 6.3 ARC runtime interposer, which crashes
        // here: name only the malloc interposer (malloc counts, no retain/release counts).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "ReplicationMicroBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BrokerReplication", package: "BrokerReplication"),
                .product(name: "BrokerReplicationTesting", package: "BrokerReplication"),
                .product(name: "LZ4", package: "BrokerReplication"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ReplicationMicroBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
