import Foundation
import Testing

/// The fuzz targets' regression test: every committed corpus input (valid traffic, and every
/// input that once broke a property) through the same checks the libFuzzer targets run, with
/// no sanitizer and no fuzzing, so `make test` needs none of the fuzz build.
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    /// Tests/Fuzz/corpus, found from this file so the test runs from any directory.
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static func inputs(of target: FuzzTarget) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(
            at: corpus.appendingPathComponent(target.rawValue), includingPropertiesForKeys: nil
        ).sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test("every corpus input keeps the target's properties", arguments: FuzzTarget.allCases)
    func corpusKeepsProperties(_ target: FuzzTarget) throws {
        let inputs = try Self.inputs(of: target)
        #expect(!inputs.isEmpty, "no corpus for \(target.rawValue)")
        for input in inputs {
            do {
                try target.check(Array(try Data(contentsOf: input)))
            } catch {
                Issue.record("\(target.rawValue)/\(input.lastPathComponent): \(error)")
            }
        }
    }

    /// Writes the seeds (FuzzSeeds) into the corpus: `make fuzz-seeds` runs it after a protocol change.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["BRPL_WRITE_FUZZ_SEEDS"] == "1"))
    func writeSeeds() throws {
        for target in FuzzTarget.allCases {
            let directory = Self.corpus.appendingPathComponent(target.rawValue)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (name, bytes) in FuzzSeeds.seeds(for: target) {
                try target.check(bytes)
                try Data(bytes).write(to: directory.appendingPathComponent("seed-\(name)"))
            }
        }
    }
}
