import PropertyBased
import Testing

/// The randomised wire tests rely on these: the same cases on every run, and a failure's
/// printed seed replays its case alone.
@Suite("Seeded property check")
struct SeededPropertyCheckTests {
    static let input = Gen.int(in: 0...1_000).array(of: 1...5)

    static func inputs(seed: String = defaultPropertySeed, count: Int) -> [[Int]] {
        var drawn: [[Int]] = []
        seededPropertyCheck(seed: seed, count: count, input: input) { drawn.append($0) }
        return drawn
    }

    @Test func everyRunChecksTheSameCases() {
        #expect(Self.inputs(count: 20) == Self.inputs(count: 20))
        #expect(Set(Self.inputs(count: 20)).count > 15, "the cases differ from each other")
    }

    @Test func theSeedBeforeACaseReplaysItAlone() throws {
        let cases = Self.inputs(count: 10)
        // What a failure at case 4 prints: the generator's state before that case.
        var random = try #require(Xoshiro(seed: defaultPropertySeed))
        for _ in 0..<4 { _ = Self.input.run(using: &random) }
        #expect(Self.inputs(seed: random.currentSeed, count: 1) == [cases[4]])
    }

    @Test func aFailingCaseIsReportedAndEndsTheCheck() {
        let cases = Self.inputs(count: 10)
        var checked = 0
        withKnownIssue("the property fails at case 4, as intended") {
            seededPropertyCheck(count: 10, input: Self.input) { value in
                checked += 1
                try #require(value != cases[4])
            }
        }
        #expect(checked == 5)
    }
}
