/// A deterministic stream of broker-like messages: JSON events of about 150 bytes.
///
/// Benchmarks and tests use it so that compression ratios and rates are measured on data
/// shaped like a broker's, and are the same from run to run (a fixed-seed generator).
public struct BrokerMessageCorpus: Sendable {
    private var state: UInt64
    private var sequence: UInt64 = 0

    private static let eventTypes = ["order.created", "order.paid", "order.shipped", "cart.updated", "user.login", "payment.refunded"]
    private static let currencies = ["EUR", "USD", "SEK", "GBP"]
    private static let regions = ["eu-north-1", "eu-west-1", "us-east-1", "ap-south-1"]

    public init(seed: UInt64 = 0x5EED_B20C) {
        self.state = seed == 0 ? 1 : seed
    }

    /// splitmix64: small, fast and good enough for test data.
    private mutating func nextRandom() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func pick<T>(_ values: [T]) -> T { values[Int(nextRandom() % UInt64(values.count))] }

    /// The next message's bytes.
    public mutating func nextMessage() -> [UInt8] {
        sequence += 1
        let type = pick(Self.eventTypes)
        let customer = nextRandom() % 100_000
        let amountCents = nextRandom() % 1_000_000
        let currency = pick(Self.currencies)
        let region = pick(Self.regions)
        let timestamp = 1_790_000_000_000 + sequence * 7 + nextRandom() % 5
        // A random trace id keeps the data from compressing better than real events do.
        let trace = String(nextRandom(), radix: 16)
        let json =
            #"{"id":\#(sequence),"type":"\#(type)","customer":"c-\#(customer)","amount":\#(amountCents / 100).\#(amountCents % 100),"#
            + #""currency":"\#(currency)","region":"\#(region)","ts":\#(timestamp),"trace":"\#(trace)"}"#
        return Array(json.utf8)
    }

    /// `count` messages in order.
    public mutating func messages(count: Int) -> [[UInt8]] {
        (0..<count).map { _ in nextMessage() }
    }
}
