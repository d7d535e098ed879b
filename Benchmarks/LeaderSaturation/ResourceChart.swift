import Foundation

/// Three small panels under a scenario's throughput panel: resident memory, open descriptors
/// and follower queue depth over time, for the leader process and each follower process. A
/// soak reads them for one thing: that every line goes flat once the warm-up (shaded) is over.
struct ResourceChart {
    var result: ScenarioResult
    /// The time axis, shared with the throughput panel.
    var maxSeconds: Double
    var windowStartSeconds: Double

    static let height = 160.0
    private static let panelHeight = 110.0
    private static let panelGap = 50.0
    private static let leaderColour = "#222222"
    static let followerColours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]

    /// The panels, from `top` over `width` starting at `left`.
    func svg(top: Double, left: Double, width: Double) -> String {
        let panelWidth = (width - 2 * Self.panelGap) / 3
        let resources = result.samples.map(\.resources)
        let followers = result.scenario.followers
        func follower(_ values: KeyPath<ResourceSample, [Int?]>, _ index: Int) -> [Int?] {
            resources.map { index < $0[keyPath: values].count ? $0[keyPath: values][index] : nil }
        }
        let mebibyte = 1_048_576.0
        let panels: [(title: String, scale: Double, lines: [(colour: String, values: [Int?])])] = [
            ("resident memory (MiB)", mebibyte,
             [(Self.leaderColour, resources.map(\.leaderResidentBytes))] + (0..<followers).map { (colour($0), follower(\.followerResidentBytes, $0)) }),
            ("open descriptors (count)", 1,
             [(Self.leaderColour, resources.map(\.leaderDescriptors))] + (0..<followers).map { (colour($0), follower(\.followerDescriptors, $0)) }),
            ("follower queue at the leader (MB)", 1e6, (0..<followers).map { (colour($0), follower(\.followerQueuedBytes, $0)) }),
        ]
        var svg = ""
        for (index, panel) in panels.enumerated() {
            let panelLeft = left + Double(index) * (panelWidth + Self.panelGap)
            svg += self.panel(panel.title, lines: panel.lines, scale: panel.scale, left: panelLeft, top: top + 20, width: panelWidth)
        }
        return svg
    }

    private func colour(_ follower: Int) -> String { Self.followerColours[follower % Self.followerColours.count] }

    private func panel(_ title: String, lines: [(colour: String, values: [Int?])], scale: Double, left: Double, top: Double, width: Double) -> String {
        let height = Self.panelHeight
        let bottom = top + height
        let peak = lines.flatMap { $0.values.compactMap { $0 } }.max().map { Double($0) / scale } ?? 0
        let (yMax, yStep) = ThroughputChart.niceScale(max(peak, 1), ticks: 3)
        func x(_ seconds: Double) -> Double { left + min(max(seconds, 0), maxSeconds) / maxSeconds * width }
        func y(_ value: Double) -> Double { bottom - min(value, yMax) / yMax * height }

        var svg = "<text x=\"\(left)\" y=\"\(top - 8)\" font-weight=\"bold\">\(ThroughputChart.escape(title))</text>\n"
        // The warm-up, which the JSON's minima and maxima leave out.
        if windowStartSeconds > 0 {
            svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(x(windowStartSeconds) - left)\" height=\"\(height)\" fill=\"#000\" fill-opacity=\"0.06\"/>\n"
        }
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#999\"/>\n"
        var tick = 0.0
        while tick <= yMax + yStep / 2 {
            svg += "<line x1=\"\(left)\" y1=\"\(y(tick))\" x2=\"\(left + width)\" y2=\"\(y(tick))\" stroke=\"#e4e4e4\"/>\n"
            svg += "<text x=\"\(left - 4)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\" font-size=\"10\">\(tick < 1000 ? ThroughputChart.trimmed(tick) : Report.grouped(tick))</text>\n"
            tick += yStep
        }
        let xStep = ThroughputChart.niceScale(maxSeconds, ticks: 4).step
        var second = 0.0
        while second <= maxSeconds * 1.000001 {
            svg += "<text x=\"\(x(second))\" y=\"\(bottom + 13)\" text-anchor=\"middle\" font-size=\"10\">\(ThroughputChart.trimmed(second))</text>\n"
            second += xStep
        }
        // The followers first, so the leader's line stays on top; a gap where a value is missing.
        for line in lines.reversed() {
            for run in Self.runs(times: result.samples.map(\.seconds), values: line.values) {
                let points = run.map { "\(x($0.seconds)),\(y(Double($0.value) / scale))" }
                svg += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(line.colour)\" stroke-width=\"1.3\"/>\n"
            }
        }
        return svg
    }

    /// The stretches of consecutive samples that have a value.
    static func runs(times: [Double], values: [Int?]) -> [[(seconds: Double, value: Int)]] {
        var runs: [[(seconds: Double, value: Int)]] = []
        var current: [(seconds: Double, value: Int)] = []
        for (seconds, value) in zip(times, values) {
            if let value {
                current.append((seconds, value))
            } else if !current.isEmpty {
                runs.append(current)
                current = []
            }
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }
}
