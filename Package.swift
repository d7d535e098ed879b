// swift-tools-version:6.1
import PackageDescription

// Swift packages come from the local copies of their GitHub repositories, by URL and a listed
// version. Benchmarks that need package-benchmark live in Benchmarks/Package.swift so that a
// broker embedding this module never builds them.
let package = Package(
    name: "BrokerReplication",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BrokerReplication", targets: ["BrokerReplication"]),
        .library(name: "BrokerReplicationEtcd", targets: ["BrokerReplicationEtcd"]),
        .library(name: "BrokerReplicationTesting", targets: ["BrokerReplicationTesting"]),
        .library(name: "LZ4", targets: ["LZ4"]),
        .executable(name: "replication-node", targets: ["ReplicationNode"]),
        .executable(name: "leader-saturation", targets: ["LeaderSaturation"]),
        .executable(name: "mini-broker", targets: ["MiniBroker"]),
        .executable(name: "catch-up", targets: ["CatchUpBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        // Test targets only: generators for the randomised codec tests.
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // Test targets only: the process tests start and signal replication-node with it.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        // FilePath and FileDescriptor of swift-subprocess's API, on Linux.
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .target(name: "LZ4", dependencies: ["CLZ4"]),
        // syncfs(2), which Swift's Glibc module does not declare: the follower's group commit.
        .target(name: "CFileSystemSync"),
        // CRC-32C with the SSE4.2 instruction, which Swift cannot reach: every frame's checksum.
        .target(name: "CCRC32C"),
        .target(
            name: "BrokerReplication",
            dependencies: [
                "LZ4",
                "CFileSystemSync",
                "CCRC32C",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // TLS on the replication link, and the names in a follower's certificate.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                // ReplicationConfiguration(reader:): settings from flags, BRPL_* variables and a JSON file.
                .product(name: "Configuration", package: "swift-configuration"),
            ]
        ),
        // The coordinator and leader election over etcd v3's HTTP/JSON gateway: its own module,
        // so that a broker using LocalCoordinator never builds AsyncHTTPClient.
        .target(
            name: "BrokerReplicationEtcd",
            dependencies: [
                "BrokerReplication",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Broker-like JSON events of about 150 bytes, the same from run to run: the load of
        // replication-node and leader-saturation, and of tests through BrokerReplicationTesting.
        .target(name: "BrokerMessageCorpus"),
        .target(
            name: "BrokerReplicationTesting",
            dependencies: [
                "BrokerReplication",
                "BrokerMessageCorpus",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // TestCertificates: a CA and leaf certificates made at test time.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                // ChildProcess: etcd and replication-node as child processes, awaited, not polled.
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system", condition: .when(platforms: [.linux])),
            ]
        ),
        .executableTarget(
            name: "ReplicationNode",
            dependencies: [
                "BrokerReplication",
                "BrokerMessageCorpus",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // --metrics: GET /metrics and GET /health over NIOHTTP1, swift-metrics to Prometheus.
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "MiniBroker",
            dependencies: [
                "BrokerReplication",
                "BrokerReplicationEtcd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/MiniBroker",
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "LeaderSaturation",
            dependencies: [
                "BrokerReplication",
                "BrokerMessageCorpus",
                "BrokerReplicationTesting",
                "LZ4",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/LeaderSaturation"
        ),
        .executableTarget(
            name: "CatchUpBenchmark",
            dependencies: [
                "BrokerReplication",
                "BrokerMessageCorpus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CatchUp"
        ),
        .testTarget(name: "LZ4Tests", dependencies: ["LZ4"]),
        // The `.heavy` test trait: one cluster-under-load test at a time across both test targets.
        .target(name: "HeavyTestGate", path: "Tests/HeavyTestGate"),
        .testTarget(
            name: "ReplicationNodeTests",
            dependencies: [
                "ReplicationNode", "MiniBroker", "BrokerReplication", "BrokerReplicationTesting", "HeavyTestGate",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system", condition: .when(platforms: [.linux])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "BrokerReplicationEtcdTests",
            dependencies: [
                "BrokerReplicationEtcd",
                "HeavyTestGate",
                "BrokerReplication",
                "BrokerReplicationTesting",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BrokerReplicationTests",
            dependencies: [
                "BrokerReplication",
                "BrokerReplicationTesting",
                "HeavyTestGate",
                "LZ4",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
