import Foundation

/// Small SVG helpers shared by the chart drawers. Output is plain XML (no entities
/// beyond the five XML ones), so it parses as XML and embeds directly in XHTML.
enum SVG {
    static let namespace = "http://www.w3.org/2000/svg"

    /// Escapes text for XML content and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A coordinate with at most two decimals and no trailing zeros.
    static func number(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.2f", rounded).replacingOccurrences(of: #"0+$"#, with: "", options: .regularExpression)
    }

    /// A standalone `<svg>` element (no XML declaration, so it can also be inlined in HTML).
    static func document(width: Double, height: Double, label: String, content: String) -> String {
        "<svg xmlns=\"\(namespace)\" width=\"\(number(width))\" height=\"\(number(height))\" "
            + "viewBox=\"0 0 \(number(width)) \(number(height))\" role=\"img\" aria-label=\"\(escape(label))\" "
            + "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            + "<rect class=\"background\" x=\"0\" y=\"0\" width=\"\(number(width))\" height=\"\(number(height))\" fill=\"white\"/>\n"
            + content + "</svg>\n"
    }

    /// Charts side by side in one figure, each `LineChart` drawn at its own size.
    static func row(_ charts: [LineChart], label: String, gap: Double = 8) -> String {
        var content = "", x = 0.0
        for chart in charts {
            content += chart.group(x: x, y: 0)
            x += chart.width + gap
        }
        return document(width: max(0, x - gap), height: charts.map(\.height).max() ?? 0, label: label, content: content)
    }
}

/// An axis range with evenly spaced "nice" ticks (steps of 1, 2, 2.5 or 5 times a power of ten).
struct AxisScale: Sendable, Equatable {
    var lower: Double
    var upper: Double
    var ticks: [Double]
    var step: Double

    /// A range containing [minimum, maximum] whose ends are ticks, with about `targetTicks` ticks.
    /// `integers`: steps of at least 1 (epochs). A single value is widened so that it shows.
    static func nice(minimum: Double, maximum: Double, targetTicks: Int = 6, integers: Bool = false) -> AxisScale {
        var low = minimum.isFinite ? minimum : 0, high = maximum.isFinite ? maximum : 1
        if low > high { swap(&low, &high) }
        if high - low < 1e-12 {
            let pad = integers ? 1 : max(abs(low) * 0.1, 0.5)
            low -= pad
            high += pad
        }
        let rough = (high - low) / Double(max(1, targetTicks - 1))
        let power = pow(10, floor(log10(rough)))
        var step = ([1, 2, 2.5, 5, 10].first { $0 * power >= rough * 0.999 } ?? 10) * power
        if integers { step = max(1, step.rounded(.up)) }
        let first = floor(low / step + 1e-9) * step, last = ceil(high / step - 1e-9) * step
        let count = Int(((last - first) / step).rounded())
        let ticks = (0...count).map { first + Double($0) * step }
        return AxisScale(lower: first, upper: last, ticks: ticks, step: step)
    }

    /// Tick text with as many decimals as the step needs.
    func label(_ value: Double) -> String {
        var decimals = 0
        while decimals < 6 && abs(step * pow(10, Double(decimals)) - (step * pow(10, Double(decimals))).rounded()) > 1e-6 {
            decimals += 1
        }
        let text = String(format: "%.\(decimals)f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }
}

/// One generic line chart: series of (x, y) points, axes with nice ticks and grid lines,
/// axis labels, a title and a legend. Every point also gets a marker, so a series of one
/// point still shows. Elements carry classes (`series`, `marker`, `tick`, `legend-entry`,
/// ...) and `data-` attributes so that tests and scripts can read back what was drawn.
struct LineChart: Sendable {
    struct Series: Sendable {
        var name: String
        var points: [(x: Double, y: Double)]
        var color: String
        var dashed: Bool

        init(name: String, points: [(x: Double, y: Double)], color: String, dashed: Bool = false) {
            self.name = name
            self.points = points
            self.color = color
            self.dashed = dashed
        }
    }

    enum LegendCorner: String, Sendable { case upperLeft, upperRight, lowerLeft, lowerRight }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    var width: Double = 480
    var height: Double = 340
    var legendCorner: LegendCorner = .upperRight
    /// Ticks of at least 1 on x (epochs).
    var integerX = true
    /// Ranges the y axis must include besides the data (e.g. 0 for losses).
    var yIncludes: [Double] = []

    /// matplotlib's first colours: blue, orange, green, red, purple, brown.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

    init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    // Plot area margins.
    private let left = 62.0, right = 14.0, top = 34.0, bottom = 46.0

    var xScale: AxisScale {
        let xs = series.flatMap { $0.points.map(\.x) }
        return .nice(minimum: xs.min() ?? 0, maximum: xs.max() ?? 1, targetTicks: 8, integers: integerX)
    }

    var yScale: AxisScale {
        let ys = series.flatMap { $0.points.map(\.y) } + yIncludes
        return .nice(minimum: ys.min() ?? 0, maximum: ys.max() ?? 1, targetTicks: 6)
    }

    /// The chart alone, as an SVG document.
    func svg() -> String {
        SVG.document(width: width, height: height, label: title, content: group(x: 0, y: 0))
    }

    /// The chart as a `<g>` translated to (x, y), for composing figures.
    func group(x: Double, y: Double) -> String {
        let xs = xScale, ys = yScale
        let plotX = left, plotY = top, plotW = width - left - right, plotH = height - top - bottom
        func px(_ v: Double) -> Double { plotX + (v - xs.lower) / (xs.upper - xs.lower) * plotW }
        func py(_ v: Double) -> Double { plotY + plotH - (v - ys.lower) / (ys.upper - ys.lower) * plotH }
        let n = SVG.number
        var s = "<g class=\"line-chart\" transform=\"translate(\(n(x)),\(n(y)))\" "
            + "data-x-min=\"\(xs.lower)\" data-x-max=\"\(xs.upper)\" data-y-min=\"\(ys.lower)\" data-y-max=\"\(ys.upper)\">\n"
        s += "<text class=\"title\" x=\"\(n(plotX + plotW / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(SVG.escape(title))</text>\n"
        s += "<rect class=\"plot-area\" x=\"\(n(plotX))\" y=\"\(n(plotY))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\" fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n"
        // Ticks, grid lines and tick labels.
        s += "<g class=\"axis x\" font-size=\"11\" text-anchor=\"middle\">\n"
        for t in xs.ticks {
            let p = n(px(t))
            s += "<line class=\"grid\" x1=\"\(p)\" y1=\"\(n(plotY))\" x2=\"\(p)\" y2=\"\(n(plotY + plotH))\" stroke=\"#e5e5e5\"/>"
            s += "<line class=\"tick\" x1=\"\(p)\" y1=\"\(n(plotY + plotH))\" x2=\"\(p)\" y2=\"\(n(plotY + plotH + 5))\" stroke=\"#333\"/>"
            s += "<text class=\"tick-label\" data-value=\"\(t)\" x=\"\(p)\" y=\"\(n(plotY + plotH + 18))\">\(xs.label(t))</text>\n"
        }
        s += "<text class=\"axis-label\" x=\"\(n(plotX + plotW / 2))\" y=\"\(n(height - 8))\" font-size=\"12\">\(SVG.escape(xLabel))</text>\n</g>\n"
        s += "<g class=\"axis y\" font-size=\"11\" text-anchor=\"end\">\n"
        for t in ys.ticks {
            let p = n(py(t))
            s += "<line class=\"grid\" x1=\"\(n(plotX))\" y1=\"\(p)\" x2=\"\(n(plotX + plotW))\" y2=\"\(p)\" stroke=\"#e5e5e5\"/>"
            s += "<line class=\"tick\" x1=\"\(n(plotX - 5))\" y1=\"\(p)\" x2=\"\(n(plotX))\" y2=\"\(p)\" stroke=\"#333\"/>"
            s += "<text class=\"tick-label\" data-value=\"\(t)\" x=\"\(n(plotX - 8))\" y=\"\(p)\" dy=\"4\">\(ys.label(t))</text>\n"
        }
        let ly = plotY + plotH / 2
        s += "<text class=\"axis-label\" x=\"16\" y=\"\(n(ly))\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(n(ly)))\">\(SVG.escape(yLabel))</text>\n</g>\n"
        // Series: a polyline and a marker per point.
        for item in series {
            let dash = item.dashed ? " stroke-dasharray=\"6 4\"" : ""
            let points = item.points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
            s += "<g class=\"series-group\" data-name=\"\(SVG.escape(item.name))\">"
            s += "<polyline class=\"series\" data-name=\"\(SVG.escape(item.name))\" points=\"\(points)\" fill=\"none\" stroke=\"\(item.color)\" stroke-width=\"2\"\(dash)/>"
            for point in item.points {
                s += "<circle class=\"marker\" cx=\"\(n(px(point.x)))\" cy=\"\(n(py(point.y)))\" r=\"3\" fill=\"\(item.color)\"/>"
            }
            s += "</g>\n"
        }
        s += legend(plotX: plotX, plotY: plotY, plotW: plotW, plotH: plotH)
        return s + "</g>\n"
    }

    private func legend(plotX: Double, plotY: Double, plotW: Double, plotH: Double) -> String {
        guard !series.isEmpty else { return "" }
        let n = SVG.number
        let rowHeight = 17.0
        let boxW = 44 + Double(series.map(\.name.count).max() ?? 0) * 6.6
        let boxH = Double(series.count) * rowHeight + 8
        let boxX = legendCorner == .upperLeft || legendCorner == .lowerLeft ? plotX + 8 : plotX + plotW - boxW - 8
        let boxY = legendCorner == .upperLeft || legendCorner == .upperRight ? plotY + 8 : plotY + plotH - boxH - 8
        var s = "<g class=\"legend\" font-size=\"11\">"
        s += "<rect x=\"\(n(boxX))\" y=\"\(n(boxY))\" width=\"\(n(boxW))\" height=\"\(n(boxH))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\" rx=\"3\"/>\n"
        for (index, item) in series.enumerated() {
            let y = boxY + 4 + rowHeight * (Double(index) + 0.5)
            let dash = item.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<g class=\"legend-entry\"><line x1=\"\(n(boxX + 8))\" y1=\"\(n(y))\" x2=\"\(n(boxX + 34))\" y2=\"\(n(y))\" stroke=\"\(item.color)\" stroke-width=\"2\"\(dash)/>"
            s += "<text x=\"\(n(boxX + 40))\" y=\"\(n(y))\" dy=\"4\">\(SVG.escape(item.name))</text></g>\n"
        }
        return s + "</g>\n"
    }
}

/// One generic heat map: a grid of values with row and column labels, each cell shaded by
/// its value (square-root scale, so small counts beside a large diagonal still show) and
/// printed in the cell. Cells carry `data-row`, `data-column` and `data-value`.
struct HeatMap: Sendable {
    var title: String
    var values: [[Double]]
    var rowLabels: [String]
    var columnLabels: [String]
    var rowAxisLabel: String
    var columnAxisLabel: String
    var cellSize: Double = 38
    /// Decimals of the printed values.
    var decimals = 0

    init(title: String, values: [[Double]], rowLabels: [String], columnLabels: [String],
                rowAxisLabel: String, columnAxisLabel: String) {
        self.title = title
        self.values = values
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.rowAxisLabel = rowAxisLabel
        self.columnAxisLabel = columnAxisLabel
    }

    func svg() -> String {
        let n = SVG.number
        let rows = values.count, columns = values.map(\.count).max() ?? 0
        let labelWidth = max(24, Double(rowLabels.map(\.count).max() ?? 1) * 7 + 10)
        let left = 30 + labelWidth, top = 58.0
        let width = left + Double(columns) * cellSize + 16, height = top + Double(rows) * cellSize + 16
        let maximum = max(values.flatMap { $0 }.max() ?? 0, 1e-12)
        var s = "<g class=\"heat-map\" data-rows=\"\(rows)\" data-columns=\"\(columns)\">\n"
        s += "<text class=\"title\" x=\"\(n(left + Double(columns) * cellSize / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(SVG.escape(title))</text>\n"
        s += "<text class=\"axis-label\" x=\"\(n(left + Double(columns) * cellSize / 2))\" y=\"36\" text-anchor=\"middle\" font-size=\"12\">\(SVG.escape(columnAxisLabel))</text>\n"
        let midY = top + Double(rows) * cellSize / 2
        s += "<text class=\"axis-label\" x=\"14\" y=\"\(n(midY))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 \(n(midY)))\">\(SVG.escape(rowAxisLabel))</text>\n"
        for (c, label) in columnLabels.prefix(columns).enumerated() {
            s += "<text class=\"column-label\" x=\"\(n(left + (Double(c) + 0.5) * cellSize))\" y=\"\(n(top - 6))\" text-anchor=\"middle\" font-size=\"11\">\(SVG.escape(label))</text>\n"
        }
        for (r, label) in rowLabels.prefix(rows).enumerated() {
            s += "<text class=\"row-label\" x=\"\(n(left - 6))\" y=\"\(n(top + (Double(r) + 0.5) * cellSize))\" dy=\"4\" text-anchor=\"end\" font-size=\"11\">\(SVG.escape(label))</text>\n"
        }
        for (r, row) in values.enumerated() {
            for (c, value) in row.enumerated() {
                let shade = (max(0, value) / maximum).squareRoot()
                let x = left + Double(c) * cellSize, y = top + Double(r) * cellSize
                let text = String(format: "%.\(decimals)f", value)
                s += "<rect class=\"cell\" data-row=\"\(r)\" data-column=\"\(c)\" data-value=\"\(text)\" x=\"\(n(x))\" y=\"\(n(y))\" "
                    + "width=\"\(n(cellSize))\" height=\"\(n(cellSize))\" fill=\"\(Self.color(shade))\" stroke=\"white\"/>"
                s += "<text class=\"cell-value\" x=\"\(n(x + cellSize / 2))\" y=\"\(n(y + cellSize / 2))\" dy=\"4\" text-anchor=\"middle\" "
                    + "font-size=\"\(cellSize < 34 ? 9 : 11)\" fill=\"\(shade > 0.55 ? "white" : "#222")\">\(text)</text>\n"
            }
        }
        s += "</g>\n"
        return SVG.document(width: width, height: height, label: title, content: s)
    }

    /// White (0) to dark blue (1).
    static func color(_ t: Double) -> String {
        let t = min(max(t, 0), 1)
        let (r, g, b) = (247 - t * (247 - 8), 251 - t * (251 - 48), 255 - t * (255 - 107))
        return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
    }
}

/// The tutorial's figure from a training history: accuracy (training and test) on the
/// left, loss on the right. With several runs, their curves are overlaid, each run in
/// its own colour, training dashed and test solid.
public enum TrainingCurves {
    static func charts(_ runs: [(name: String, history: [EpochRecord])]) -> [LineChart] {
        var accuracy: [LineChart.Series] = [], loss: [LineChart.Series] = []
        let single = runs.count == 1
        for (index, run) in runs.enumerated() {
            let prefix = single ? "" : run.name + " "
            let trainColor = LineChart.palette[(single ? 0 : index) % LineChart.palette.count]
            let testColor = LineChart.palette[(single ? 1 : index) % LineChart.palette.count]
            let epochs = run.history.map { Double($0.epoch) }
            accuracy.append(.init(name: prefix + (single ? "Training Accuracy" : "training"),
                                  points: Array(zip(epochs, run.history.map { $0.trainAccuracy * 100 })).map { (x: $0.0, y: $0.1) },
                                  color: trainColor, dashed: !single))
            accuracy.append(.init(name: prefix + (single ? "Test Accuracy" : "test"),
                                  points: Array(zip(epochs, run.history.map { $0.testAccuracy * 100 })).map { (x: $0.0, y: $0.1) },
                                  color: testColor))
            loss.append(.init(name: prefix + (single ? "Training Loss" : "training"),
                              points: Array(zip(epochs, run.history.map(\.trainLoss))).map { (x: $0.0, y: $0.1) },
                              color: trainColor, dashed: !single))
            loss.append(.init(name: prefix + (single ? "Test Loss" : "test"),
                              points: Array(zip(epochs, run.history.map(\.testLoss))).map { (x: $0.0, y: $0.1) },
                              color: testColor))
        }
        var left = LineChart(title: "Training and Test Accuracy", xLabel: "Epoch", yLabel: "Accuracy (%)", series: accuracy)
        left.legendCorner = .lowerRight
        var right = LineChart(title: "Training and Test Loss", xLabel: "Epoch", yLabel: "Loss", series: loss)
        right.legendCorner = .upperRight
        right.yIncludes = [0]
        return [left, right]
    }

    /// `curves.svg`: both panels side by side.
    public static func svg(_ runs: [(name: String, history: [EpochRecord])]) -> String {
        SVG.row(charts(runs), label: "Training and test accuracy and loss per epoch")
    }

    public static func svg(history: [EpochRecord]) -> String { svg([(name: "", history: history)]) }
}
