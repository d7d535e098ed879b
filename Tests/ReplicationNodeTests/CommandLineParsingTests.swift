import Testing

@testable import ReplicationNode

@Suite("Command-line values")
struct CommandLineParsingTests {
    @Test(arguments: [
        ("127.0.0.1:7000", "127.0.0.1", 7000),
        ("localhost:0", "localhost", 0),
        ("[::1]:65535", "::1", 65535),
        ("node-a.internal:9", "node-a.internal", 9),
    ])
    func hostPortParses(text: String, host: String, port: Int) throws {
        let address = try HostPort(parsing: text, flag: "--listen", ports: 0...65535)
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test(arguments: ["127.0.0.1", ":7000", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "::1:7000", "127.0.0.1:-1", "[]:7000"])
    func hostPortRejectsNamingTheFlag(text: String) {
        #expect {
            try HostPort(parsing: text, flag: "--leader", ports: 1...65535)
        } throws: { error in
            "\(error)".contains("--leader")
        }
    }

    @Test func portZeroOnlyWhereAllowed() {
        #expect(throws: (any Error).self) { try HostPort(parsing: "127.0.0.1:0", flag: "--leader", ports: 1...65535) }
    }

    @Test(arguments: ["0", "-5", "fast", "", "1.5"])
    func loadRateRejectsNonPositive(text: String) {
        #expect {
            try LoadPlan.Rate(parsing: text)
        } throws: { error in
            "\(error)".contains("--load-rate")
        }
    }

    @Test func loadRateParses() throws {
        #expect(try LoadPlan.Rate(parsing: "max") == .unlimited)
        #expect(try LoadPlan.Rate(parsing: "5000") == .recordsPerSecond(5000))
    }

    @Test func fixedSizeRecordPoolHasExactSizes() {
        let pool = LoadGenerator.recordPool(recordBytes: 1000)
        #expect(pool.count == 1200)
        #expect(pool.allSatisfy { $0.readableBytes == 1000 })
        #expect(LoadGenerator.recordPool(recordBytes: nil).count == 8192)
    }
}
