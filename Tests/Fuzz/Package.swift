// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets, one per entry point a peer's bytes reach (Docs/Operations.md, "Security:
// fuzzing"). Their own package, so that neither an embedding broker nor `make test` builds them
// with the sanitizers: `make fuzz` builds them into .build-fuzz with
// `-sanitize=fuzzer,address -enable-testing`.
//
// The properties each target asserts live in FuzzChecks, a link to
// Tests/BrokerReplicationTests/Fuzz/Checks: the unit tests compile the same files and run them
// over the committed corpus, so a crash found here becomes a regression test there.
let targets = ["frame-leader", "frame-follower", "handshake", "batch", "path", "sync-manifest"]

let package = Package(
    name: "BrokerReplicationFuzz",
    platforms: [.macOS(.v15)],
    products: targets.map { .executable(name: "fuzz-\($0)", targets: ["fuzz-\($0)"]) },
    dependencies: [
        // Named, because a path dependency is otherwise known by its directory's name.
        .package(name: "BrokerReplication", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // libFuzzer's driver, declared for Swift, and the `main` that hands the process to it.
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzMain", dependencies: ["CLibFuzzer"]),
        .target(
            name: "FuzzChecks",
            dependencies: [
                .product(name: "BrokerReplication", package: "BrokerReplication"),
                .product(name: "LZ4", package: "BrokerReplication"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        )
    ] + targets.map { .executableTarget(name: "fuzz-\($0)", dependencies: ["FuzzChecks", "FuzzMain"]) },
    swiftLanguageModes: [.v6]
)
