import PropertyBased
import Testing

/// The seed of every ``seededPropertyCheck(seed:count:input:sourceLocation:perform:)`` that
/// names none: 32 bytes in base64, swift-property-based's seed format.
let defaultPropertySeed = "QnJva2VyUmVwbGljYXRpb24gcHJvcGVydHkgc2VlZCE="

/// Runs `body` on `count` inputs that `input` draws from one fixed seed, so every run, in CI
/// too, checks the same cases.
///
/// Why not swift-property-based's own `propertyCheck`: in 2.0.1 it draws a new random seed on
/// every run, and its `.fixedSeed` trait runs one case and reports an issue even when it
/// passes. This keeps the library's generators and its random number generator (`Xoshiro`).
///
/// A property fails by throwing (`try #require`): the failure names the case and its input,
/// and the seed that replays exactly that case (`seed: "…", count: 1`).
func seededPropertyCheck<Value>(
    seed: String = defaultPropertySeed,
    count: Int,
    input: Generator<Value, some Sequence>,
    sourceLocation: SourceLocation = #_sourceLocation,
    perform body: (Value) throws -> Void
) {
    guard var random = Xoshiro(seed: seed) else {
        Issue.record("seed \"\(seed)\" is not 32 bytes in base64", sourceLocation: sourceLocation)
        return
    }
    for index in 0..<count {
        let caseSeed = random.currentSeed
        let value = input.run(using: &random)
        do {
            try body(value)
        } catch {
            // A failed `#require` has recorded its own issue; any other error is news.
            let reason = error is ExpectationFailedError ? "" : ": \(error)"
            Issue.record(
                """
                property failed at case \(index) of \(count) from seed "\(seed)", input \(String(describing: value).prefix(500))\(reason)
                replay this case alone with seededPropertyCheck(seed: "\(caseSeed)", count: 1, …)
                """,
                sourceLocation: sourceLocation
            )
            return
        }
    }
}
