import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import LeNetKit
import Testing

// MARK: - Reading drawn XML back

/// Parses SVG or XHTML as XML; fails the test when it is not well formed.
func parseXML(_ text: String) throws -> XMLDocument {
    try XMLDocument(data: Data(text.utf8), options: [])
}

/// Every element below `node` (itself included) with local name `name` and, if given, `cssClass` among its classes.
func xmlElements(_ node: XMLNode, _ name: String, class cssClass: String? = nil) -> [XMLElement] {
    var found: [XMLElement] = []
    func walk(_ node: XMLNode) {
        if let element = node as? XMLElement, (element.localName ?? element.name) == name,
           cssClass.map({ xmlAttribute(element, "class").split(separator: " ").contains(Substring($0)) }) ?? true {
            found.append(element)
        }
        for child in node.children ?? [] { walk(child) }
    }
    walk(node)
    return found
}

/// An attribute's value ("" if absent). Looked up in `attributes`, because swift-corelibs-foundation's
/// `attribute(forName:)` finds nothing on elements in a namespace (every SVG and XHTML element).
func xmlAttribute(_ element: XMLElement, _ name: String) -> String {
    element.attributes?.first { $0.name == name }?.stringValue ?? ""
}
func xmlNumber(_ element: XMLElement, _ name: String) -> Double { Double(xmlAttribute(element, name)) ?? .nan }

/// "x1,y1 x2,y2 ..." -> points.
func polylinePoints(_ element: XMLElement) -> [(x: Double, y: Double)] {
    xmlAttribute(element, "points").split(separator: " ").map { pair in
        let parts = pair.split(separator: ",").compactMap { Double($0) }
        return (parts[0], parts[1])
    }
}

/// A history with figures shaped like a real run.
func syntheticHistory(epochs: Int) -> [EpochRecord] {
    // EpochRecord has no public initialiser: build it as history.json holds it.
    let records: [[String: Double]] = (1...epochs).map { e in
        let t = Double(e)
        return ["epoch": t, "trainAccuracy": 1 - 0.4 / t, "trainLoss": 1.2 / t, "testAccuracy": 1 - 0.08 / t,
                "testLoss": 0.25 / t, "seconds": 10 + t / 10]
    }
    do {
        return try JSONDecoder().decode([EpochRecord].self, from: JSONSerialization.data(withJSONObject: records))
    } catch {
        Issue.record("cannot build a synthetic history: \(error)")
        return []
    }
}

// MARK: - Tests

/// The line-chart and heat-map drawers, read back as XML.
@Suite struct OutputChartTests {
    @Test(arguments: [1, 2, 8, 23])
    func curvesDrawTwoPanelsWithOnePointPerEpoch(epochs: Int) throws {
        let history = syntheticHistory(epochs: epochs)
        let document = try parseXML(TrainingCurves.svg(history: history))
        let root = try #require(document.rootElement())
        #expect(root.localName == "svg")
        #expect(root.uri == SVG.namespace)
        let charts = xmlElements(root, "g", class: "line-chart")
        #expect(charts.count == 2)
        #expect(charts.map { xmlElements($0, "text", class: "title").first?.stringValue } == ["Training and Test Accuracy", "Training and Test Loss"])

        let expected: [[(String, [Double])]] = [
            [("Training Accuracy", history.map { $0.trainAccuracy * 100 }), ("Test Accuracy", history.map { $0.testAccuracy * 100 })],
            [("Training Loss", history.map(\.trainLoss)), ("Test Loss", history.map(\.testLoss))],
        ]
        for (chart, wanted) in zip(charts, expected) {
            let series = xmlElements(chart, "polyline", class: "series")
            #expect(series.count == 2)
            #expect(series.map { xmlAttribute($0, "data-name") } == wanted.map(\.0))
            // Legend: one entry per series, same names.
            let legend = xmlElements(chart, "g", class: "legend-entry").map { xmlElements($0, "text").first?.stringValue ?? "" }
            #expect(legend == wanted.map(\.0))
            // Axis labels.
            let labels = xmlElements(chart, "text", class: "axis-label").map { $0.stringValue ?? "" }
            #expect(labels.contains("Epoch"))
            #expect(labels.contains("Accuracy (%)") || labels.contains("Loss"))

            // The axis ranges contain the data.
            let xMin = xmlNumber(chart, "data-x-min"), xMax = xmlNumber(chart, "data-x-max")
            let yMin = xmlNumber(chart, "data-y-min"), yMax = xmlNumber(chart, "data-y-max")
            #expect(xMin <= 1 && xMax >= Double(epochs) && xMin < xMax)
            for (_, values) in wanted { #expect(yMin <= values.min()! && yMax >= values.max()! && yMin < yMax) }

            // Every point, and every marker, lies in the plot area; one point per epoch.
            let area = try #require(xmlElements(chart, "rect", class: "plot-area").first)
            let (ax, ay) = (xmlNumber(area, "x"), xmlNumber(area, "y"))
            let (aw, ah) = (xmlNumber(area, "width"), xmlNumber(area, "height"))
            for line in series {
                let points = polylinePoints(line)
                #expect(points.count == epochs)
                for p in points { #expect(p.x >= ax - 0.01 && p.x <= ax + aw + 0.01 && p.y >= ay - 0.01 && p.y <= ay + ah + 0.01) }
                // x strictly increases with the epoch.
                #expect(zip(points, points.dropFirst()).allSatisfy { $0.x < $1.x })
            }
            #expect(xmlElements(chart, "circle", class: "marker").count == 2 * epochs)

            // Ticks: labelled, inside the range, evenly spaced; x ticks are whole epochs.
            let axes = xmlElements(chart, "g", class: "axis")
            #expect(axes.count == 2)
            for axis in axes {
                let values = xmlElements(axis, "text", class: "tick-label").map { xmlNumber($0, "data-value") }
                #expect(values.count >= 2)
                let steps = zip(values, values.dropFirst()).map { $1 - $0 }
                #expect(steps.allSatisfy { abs($0 - steps[0]) < 1e-9 && $0 > 0 })
                #expect(abs(values.first! - (axis === axes[0] ? xMin : yMin)) < 1e-9)
                #expect(abs(values.last! - (axis === axes[0] ? xMax : yMax)) < 1e-9)
            }
            let xTicks = xmlElements(axes[0], "text", class: "tick-label")
            #expect(xTicks.allSatisfy { xmlNumber($0, "data-value") == xmlNumber($0, "data-value").rounded() })
            if epochs <= 8 { #expect(xTicks.map { $0.stringValue ?? "" }.contains("1")) }
        }
    }

    /// A point's pixel position is a linear map of its value onto the plot area.
    @Test func pointsArePlacedByValue() throws {
        let chart = LineChart(title: "t", xLabel: "x", yLabel: "y",
                              series: [.init(name: "a", points: [(x: 0, y: 0), (x: 10, y: 5), (x: 20, y: 10)], color: "#000")])
        let root = try #require(try parseXML(chart.svg()).rootElement())
        let group = try #require(xmlElements(root, "g", class: "line-chart").first)
        #expect(xmlNumber(group, "data-x-min") == 0 && xmlNumber(group, "data-x-max") == 20)
        #expect(xmlNumber(group, "data-y-min") == 0 && xmlNumber(group, "data-y-max") == 10)
        let area = try #require(xmlElements(root, "rect", class: "plot-area").first)
        let points = polylinePoints(try #require(xmlElements(root, "polyline", class: "series").first))
        let (ax, ay, aw, ah) = (xmlNumber(area, "x"), xmlNumber(area, "y"), xmlNumber(area, "width"), xmlNumber(area, "height"))
        #expect(abs(points[0].x - ax) < 0.01 && abs(points[0].y - (ay + ah)) < 0.01)
        #expect(abs(points[1].x - (ax + aw / 2)) < 0.01 && abs(points[1].y - (ay + ah / 2)) < 0.01)
        #expect(abs(points[2].x - (ax + aw)) < 0.01 && abs(points[2].y - ay) < 0.01)
    }

    @Test func comparisonOverlaysBothRuns() throws {
        let svg = TrainingCurves.svg([(name: "lenet", history: syntheticHistory(epochs: 4)),
                                      (name: "lenet-bn", history: syntheticHistory(epochs: 4))])
        let root = try #require(try parseXML(svg).rootElement())
        for chart in xmlElements(root, "g", class: "line-chart") {
            let series = xmlElements(chart, "polyline", class: "series")
            #expect(series.map { xmlAttribute($0, "data-name") } == ["lenet training", "lenet test", "lenet-bn training", "lenet-bn test"])
            #expect(series.allSatisfy { polylinePoints($0).count == 4 })
            #expect(xmlElements(chart, "g", class: "legend-entry").count == 4)
            // Each run has its own colour; training dashed, test solid.
            #expect(Set(series.map { xmlAttribute($0, "stroke") }).count == 2)
            #expect(series.map { !xmlAttribute($0, "stroke-dasharray").isEmpty } == [true, false, true, false])
        }
    }

    @Test func niceAxisScales() {
        let percent = AxisScale.nice(minimum: 59.3, maximum: 99.1, targetTicks: 6)
        #expect(percent.lower <= 59.3 && percent.upper >= 99.1)
        #expect([5.0, 10].contains(percent.step))
        let loss = AxisScale.nice(minimum: 0, maximum: 1.207, targetTicks: 6)
        #expect(loss.lower == 0 && loss.step == 0.25 && loss.upper == 1.25)
        #expect(loss.ticks.map(loss.label) == ["0.00", "0.25", "0.50", "0.75", "1.00", "1.25"])
        let epochs = AxisScale.nice(minimum: 1, maximum: 8, targetTicks: 8, integers: true)
        #expect(epochs.ticks == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(epochs.label(3) == "3")
        let one = AxisScale.nice(minimum: 1, maximum: 1, targetTicks: 8, integers: true)
        #expect(one.lower < 1 && one.upper > 1 && one.ticks.contains(1) && one.step == 1)
        let flat = AxisScale.nice(minimum: 0.5, maximum: 0.5)
        #expect(flat.lower < 0.5 && flat.upper > 0.5)
        let small = AxisScale.nice(minimum: 0.0213, maximum: 0.0442)
        #expect(small.lower <= 0.0213 && small.upper >= 0.0442 && small.ticks.count >= 3 && small.ticks.count <= 8)
    }

    @Test func heatMapDrawsOneCellPerValue() throws {
        var counts = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for t in 0..<10 { for p in 0..<10 { counts[t][p] = t == p ? 950 + t : (t * 7 + p * 3) % 11 } }
        let map = HeatMap(title: "Confusion matrix", values: counts.map { $0.map(Double.init) },
                          rowLabels: (0..<10).map(String.init), columnLabels: (0..<10).map(String.init),
                          rowAxisLabel: "True class", columnAxisLabel: "Predicted class")
        let root = try #require(try parseXML(map.svg()).rootElement())
        let cells = xmlElements(root, "rect", class: "cell")
        #expect(cells.count == 100)
        for cell in cells {
            let r = Int(xmlAttribute(cell, "data-row"))!, c = Int(xmlAttribute(cell, "data-column"))!
            #expect(xmlAttribute(cell, "data-value") == String(counts[r][c]))
        }
        let texts = xmlElements(root, "text", class: "cell-value").map { $0.stringValue ?? "" }
        #expect(texts == counts.joined().map(String.init))
        #expect(xmlElements(root, "text", class: "row-label").count == 10)
        #expect(xmlElements(root, "text", class: "column-label").count == 10)
        #expect(xmlElements(root, "text", class: "title").first?.stringValue == "Confusion matrix")
        let axisLabels = xmlElements(root, "text", class: "axis-label").map { $0.stringValue ?? "" }
        #expect(Set(axisLabels) == ["True class", "Predicted class"])
        // Larger counts are darker: the diagonal is the darkest colour drawn.
        let diagonal = cells.first { xmlAttribute($0, "data-row") == "9" && xmlAttribute($0, "data-column") == "9" }!
        let empty = cells.first { xmlAttribute($0, "data-value") == "0" }!
        #expect(xmlAttribute(diagonal, "fill") != xmlAttribute(empty, "fill"))
        #expect(xmlAttribute(empty, "fill") == "#f7fbff")
    }

    @Test func textIsEscaped() throws {
        let chart = LineChart(title: "a < b & \"c\"", xLabel: "x'", yLabel: "y>", series: [.init(name: "<s>", points: [(x: 1, y: 1)], color: "#000")])
        let root = try #require(try parseXML(chart.svg()).rootElement())
        #expect(xmlElements(root, "text", class: "title").first?.stringValue == "a < b & \"c\"")
        let series = try #require(xmlElements(root, "polyline", class: "series").first)
        #expect(xmlAttribute(series, "data-name") == "<s>")
    }

    @Test func progressLine() {
        let line = ProgressLine(done: 937, total: 1875, imagesPerSecond: 6210.4, loss: 0.41234, accuracy: 0.8731, secondsLeft: 69)
        let text = line.text(width: 100)
        #expect(text.hasPrefix(" 937/1875 ["))
        #expect(text.contains("6,210 img/s"))
        #expect(text.contains("loss 0.412"))
        #expect(text.contains("acc 87.3%"))
        #expect(text.hasSuffix("ETA 1:09"))
        #expect(text.count <= 100)
        #expect(line.text(width: 60).count <= 60)
        let bar = text[text.firstIndex(of: "[")!...text.firstIndex(of: "]")!]
        #expect(bar.filter { $0 == "=" }.count == 14)  // 937/1875 of 30 columns, rounded down
        #expect(ProgressLine(done: 1875, total: 1875, imagesPerSecond: 1, loss: 0, accuracy: 1, secondsLeft: nil).text(width: 100).contains("[==============================]"))
        #expect(ProgressLine.clock(3725) == "1:02:05")
        #expect(ProgressLine.clock(65) == "1:05")
    }
}
