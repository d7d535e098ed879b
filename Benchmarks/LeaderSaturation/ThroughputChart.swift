import Foundation

/// An SVG of throughput over time, one panel per scenario on a shared scale, with the fault,
/// every eviction and the throttled stretches marked, and a legend, so it reads without the
/// table; under each, the processes' memory, descriptors and queues (``ResourceChart``).
struct ThroughputChart {
    var results: [ScenarioResult]
    var ceilingBytesPerSecond: Double
    var workload: String
    /// Where the resource minima and maxima start (the warm-up before it is shaded).
    var resourceWindowStartSeconds: Double

    private let width = 1000.0
    private let left = 90.0
    private let right = 30.0
    private let panelHeight = 150.0
    private let panelGap = 70.0
    private let top = 130.0
    /// One scenario: its throughput panel, the axis label, and its resource panels.
    private var blockHeight: Double { panelHeight + panelGap + ResourceChart.height }

    func svg() -> String {
        let plotWidth = width - left - right
        let maxSeconds = max(1, results.map { max($0.loadSeconds, $0.samples.last?.seconds ?? 0) }.max() ?? 1)
        let peak = results.flatMap { $0.samples.map(\.recordsPerSecond) }.max() ?? 1
        let (yMax, yStep) = Self.niceScale(max(peak, 1))
        let xStep = Self.niceScale(maxSeconds, ticks: 8).step
        let height = top + Double(results.count) * blockHeight + 20
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="17" font-weight="bold">leader-saturation: producer throughput over time (records/s, sampled every 250 ms)</text>
            <text x="\(left)" y="44" fill="#444">\(Self.escape(workload)); LZ4 one-core ceiling \(String(format: "%.0f", ceilingBytesPerSecond / 1e6)) MB/s of payload. MB = 10^6 bytes.</text>

            """
        // Legend.
        let legendY = 72.0
        svg += """
            <line x1="\(left)" y1="\(legendY)" x2="\(left + 30)" y2="\(legendY)" stroke="#1f5fbf" stroke-width="2"/>
            <text x="\(left + 36)" y="\(legendY + 4)">records/s appended (all producers)</text>
            <line x1="\(left + 270)" y1="\(legendY - 8)" x2="\(left + 270)" y2="\(legendY + 8)" stroke="#555" stroke-width="1.5" stroke-dasharray="4,3"/>
            <text x="\(left + 278)" y="\(legendY + 4)">fault starts (cap, black hole, SIGSTOP)</text>
            <line x1="\(left + 530)" y1="\(legendY - 8)" x2="\(left + 530)" y2="\(legendY + 8)" stroke="#d62728" stroke-width="1.5"/>
            <path d="M \(left + 525) \(legendY - 10) L \(left + 535) \(legendY - 10) L \(left + 530) \(legendY - 3) Z" fill="#d62728"/>
            <text x="\(left + 538)" y="\(legendY + 4)">follower evicted</text>
            <rect x="\(left + 660)" y="\(legendY - 7)" width="26" height="14" fill="#ff9900" fill-opacity="0.25"/>
            <text x="\(left + 692)" y="\(legendY + 4)">producers throttled (min-ISR)</text>
            <text x="\(left)" y="\(legendY + 26)" fill="#444">Under each panel: the leader process (black) and each follower process (\(followerLegend)); grey: the warm-up, left out of the JSON's minima and maxima.</text>

            """
        for (index, result) in results.enumerated() {
            let panelTop = top + Double(index) * blockHeight
            let panelBottom = panelTop + panelHeight
            func x(_ seconds: Double) -> Double { left + min(max(seconds, 0), maxSeconds) / maxSeconds * plotWidth }
            func y(_ rate: Double) -> Double { panelBottom - min(rate, yMax) / yMax * panelHeight }

            let title = "\(result.scenario.name): \(Report.grouped(result.recordsPerSecond)) records/s mean, "
                + String(format: "%.1f MB/s payload, ", result.payloadBytesPerSecond / 1e6)
                + "\(result.evictions) eviction(s) (\(result.scenario.summary))"
            svg += "<text x=\"\(left)\" y=\"\(panelTop - 10)\" font-size=\"13\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
            svg += "<rect x=\"\(left)\" y=\"\(panelTop)\" width=\"\(plotWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"#999\"/>\n"

            // Throttled stretches: each sample covers the 250 ms before it.
            var previous = 0.0
            for sample in result.samples {
                if sample.throttledProducers > 0 {
                    svg += "<rect x=\"\(x(previous))\" y=\"\(panelTop)\" width=\"\(max(0.5, x(sample.seconds) - x(previous)))\" height=\"\(panelHeight)\" fill=\"#ff9900\" fill-opacity=\"0.25\"/>\n"
                }
                previous = sample.seconds
            }
            // Grid and axes.
            var tick = 0.0
            while tick <= yMax + yStep / 2 {
                svg += "<line x1=\"\(left)\" y1=\"\(y(tick))\" x2=\"\(left + plotWidth)\" y2=\"\(y(tick))\" stroke=\"#e4e4e4\"/>\n"
                svg += "<text x=\"\(left - 6)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(Report.grouped(tick))</text>\n"
                tick += yStep
            }
            var second = 0.0
            while second <= maxSeconds * 1.000001 {
                svg += "<line x1=\"\(x(second))\" y1=\"\(panelBottom)\" x2=\"\(x(second))\" y2=\"\(panelBottom + 4)\" stroke=\"#666\"/>\n"
                svg += "<text x=\"\(x(second))\" y=\"\(panelBottom + 17)\" text-anchor=\"middle\">\(Self.trimmed(second))</text>\n"
                second += xStep
            }
            svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(panelBottom + 33)\" text-anchor=\"middle\" fill=\"#444\">seconds since the load started</text>\n"
            svg += "<text transform=\"translate(\(left - 62) \(panelTop + panelHeight / 2)) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">records/s</text>\n"

            // The throughput line: each point is the rate over the 250 ms before it.
            let points = result.samples.map { "\(x($0.seconds)),\(y($0.recordsPerSecond))" }
            svg += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>\n"

            svg += ResourceChart(result: result, maxSeconds: maxSeconds, windowStartSeconds: resourceWindowStartSeconds)
                .svg(top: panelBottom + 40, left: left, width: plotWidth)

            if let fault = result.faultSeconds {
                let label = switch result.scenario.fault {
                case .bandwidthCap: "f\(result.scenario.followers) capped at \(String(format: "%.1f", Double(result.capBytesPerSecond ?? 0) / 1e6)) MB/s"
                case .blackHole: "f\(result.scenario.followers) black-holed"
                case .frozen: "f\(result.scenario.followers) SIGSTOPped"
                case .none: ""
                }
                svg += "<line x1=\"\(x(fault))\" y1=\"\(panelTop)\" x2=\"\(x(fault))\" y2=\"\(panelBottom)\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"4,3\"/>\n"
                svg += "<text x=\"\(x(fault) + 4)\" y=\"\(panelTop + 14)\" fill=\"#555\">\(Self.escape(label))</text>\n"
            }
            var labelled = 0
            for mark in result.evictionMarks where mark.seconds <= maxSeconds {
                let markX = x(mark.seconds)
                svg += "<line x1=\"\(markX)\" y1=\"\(panelTop)\" x2=\"\(markX)\" y2=\"\(panelBottom)\" stroke=\"#d62728\" stroke-width=\"1.5\"/>\n"
                svg += "<path d=\"M \(markX - 5) \(panelTop) L \(markX + 5) \(panelTop) L \(markX) \(panelTop + 7) Z\" fill=\"#d62728\"/>\n"
                if labelled < 2 {
                    let text = "\(mark.nodeID) evicted (\(mark.reason))" + (result.faultSeconds.map { String(format: ", %.2f s after the fault", mark.seconds - $0) } ?? "")
                    svg += "<text x=\"\(markX + 4)\" y=\"\(panelTop + 30 + Double(labelled) * 14)\" fill=\"#d62728\">\(Self.escape(text))</text>\n"
                    labelled += 1
                }
            }
        }
        svg += "</svg>\n"
        return svg
    }

    /// "f1 f2 …" as SVG text spans, each in its follower's colour, for as many followers as
    /// the largest scenario has.
    private var followerLegend: String {
        let colours = ResourceChart.followerColours
        let count = min(colours.count, max(1, results.map(\.scenario.followers).max() ?? 1))
        return (0..<count).map { "<tspan fill=\"\(colours[$0])\" font-weight=\"bold\">f\($0 + 1)</tspan>" }.joined(separator: " ")
    }

    /// A round maximum and step for an axis from 0 to `value`.
    static func niceScale(_ value: Double, ticks: Double = 4) -> (max: Double, step: Double) {
        let rough = value / ticks
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        return ((value / step).rounded(.up) * step, step)
    }

    static func trimmed(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
