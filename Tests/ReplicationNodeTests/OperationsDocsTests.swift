import Foundation
import Testing

/// The alert rules and the dashboard an operator imports name only metrics that exist and are
/// documented, and every rule is explained where the operator reads about it.
@Suite("Operations docs")
struct OperationsDocsTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Docs").path

    static func read(_ path: String) throws -> String { try String(contentsOfFile: docs + "/" + path, encoding: .utf8) }

    /// The `brpl_*` metric names in `text`, with a histogram's `_bucket`, `_sum` and `_count` cut.
    static func metricNames(in text: String) -> Set<String> {
        let regex = /brpl_[a-z_]+/
        return Set(text.matches(of: regex).map { match in
            var name = String(match.output)
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
            return name
        })
    }

    @Test func everyMetricTheAlertsAndTheDashboardUseIsDocumented() throws {
        let operations = try Self.read("Operations.md")
        let used = Self.metricNames(in: try Self.read("operations/alerts.yml")).union(Self.metricNames(in: try Self.read("operations/grafana-dashboard.json")))
        #expect(used.count >= 10, "\(used)")
        for name in used.sorted() {
            #expect(operations.contains("`\(name)`"), "\(name) is used by an alert or the dashboard but not documented in Operations.md")
        }
    }

    @Test func everyAlertIsExplainedAndTheDashboardIsJSON() throws {
        let operations = try Self.read("Operations.md")
        let alerts = try Self.read("operations/alerts.yml").matches(of: /- alert: (\w+)/).map { String($0.output.1) }
        #expect(alerts.count >= 6)
        for alert in alerts { #expect(operations.contains("| `\(alert)` |"), "\(alert) is not explained in Operations.md") }
        let dashboard = try JSONSerialization.jsonObject(with: Data(try Self.read("operations/grafana-dashboard.json").utf8)) as? [String: Any]
        #expect((dashboard?["panels"] as? [Any])?.isEmpty == false)
    }
}
