import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import LeNetKit
import Testing

/// report.html for a run and for the experiment, read back as XML.
@Suite struct ReportTests {
    /// A 28x28 image with a vertical stroke at column `column`.
    private func stroke(_ column: Int) -> [Float] {
        (0..<784).map { $0 % 28 == column && $0 / 28 > 4 && $0 / 28 < 24 ? 1 : 0 }
    }

    private func makeReport(epochs: Int) -> RunReport {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for t in 0..<10 { for p in 0..<10 { confusion[t][p] = t == p ? 970 + t : (t + 2 * p) % 4 } }
        let results = ClassificationResults(
            confusionMatrix: confusion,
            precision: (0..<10).map { (i: Int) -> Double? in i == 3 ? nil : 0.9 + Double(i) / 100 },
            recall: (0..<10).map { (i: Int) -> Double in 0.95 + Double(i) / 1000 },
            accuracy: 0.9871, loss: 0.0412,
            mistakes: (0..<20).map { (i: Int) -> ReportImage in
                ReportImage(pixels: stroke(i + 4), caption: "\(i % 10) \u{2192} \((i + 1) % 10)", detail: "mistake \(i)")
            },
            seconds: 0.8)
        return RunReport(
            title: "LeNet training run <lenet>", settings: [.init("Model", "lenet"), .init("Epochs", "\(epochs)")],
            machine: MachineInfo.current(), summary: ModelSummary(definition: .lenet(.lenet), batchSize: 32),
            history: syntheticHistory(epochs: epochs), runSeconds: 95.5, results: results,
            samples: (0..<20).map { (i: Int) -> ReportImage in ReportImage(pixels: stroke(i + 2), caption: "\(i % 10)") },
            samplesNote: "The first 20 images of the first training batch.",
            timings: [.init("Data loading", "0.40 s")])
    }

    private func section(_ root: XMLElement, _ id: String) throws -> XMLElement {
        try #require(xmlElements(root, "section").first { xmlAttribute($0, "id") == id }, "no section \(id)")
    }

    @Test func runReportIsSelfContainedWellFormedXHTML() throws {
        let html = try makeReport(epochs: 3).html()
        let root = try #require(try parseXML(html).rootElement())
        #expect(root.localName == "html")
        #expect(root.uri == "http://www.w3.org/1999/xhtml")
        #expect(xmlElements(root, "title").first?.stringValue == "LeNet training run <lenet>")
        // Nothing fetched from anywhere: no scripts, no links or sources outside the file.
        #expect(xmlElements(root, "script").isEmpty)
        #expect(xmlElements(root, "link").isEmpty)
        for image in xmlElements(root, "img") { #expect(xmlAttribute(image, "src").hasPrefix("data:image/png;base64,")) }
        let withoutNamespaces = html.replacingOccurrences(of: "http://www.w3.org/1999/xhtml", with: "")
            .replacingOccurrences(of: SVG.namespace, with: "")
        #expect(!withoutNamespaces.contains("http://") && !withoutNamespaces.contains("https://"))
        #expect(!html.contains("url("))

        let ids = xmlElements(root, "section").map { xmlAttribute($0, "id") }
        #expect(ids == ["settings", "curves", "epochs", "model", "confusion", "samples", "mistakes", "timings"])
    }

    @Test func runReportShowsCurvesTableAndSummary() throws {
        let root = try #require(try parseXML(try makeReport(epochs: 5).html()).rootElement())
        let curves = try section(root, "curves")
        #expect(xmlElements(curves, "svg").count == 1)
        let charts = xmlElements(curves, "g", class: "line-chart")
        #expect(charts.count == 2)
        for chart in charts {
            let series = xmlElements(chart, "polyline", class: "series")
            #expect(series.count == 2)
            #expect(series.allSatisfy { polylinePoints($0).count == 5 })
        }
        let rows = xmlElements(try section(root, "epochs"), "tr")
        #expect(rows.count == 1 + 5)  // header + one per epoch
        #expect(xmlElements(rows[1], "td").map { $0.stringValue ?? "" }.prefix(5) == ["1", "60.00%", "1.2000", "92.00%", "0.2500"])
        let summary = xmlElements(try section(root, "model"), "pre").first?.stringValue ?? ""
        #expect(summary.contains("Total params: 61,706"))
        #expect(summary.contains("├─Conv2d: 1-1"))
        let settings = xmlElements(try section(root, "settings"), "th").map { $0.stringValue ?? "" }
        #expect(settings.contains("Model") && settings.contains("CPU") && settings.contains("Logical cores") && settings.contains("Operating system"))
        let timings = xmlElements(try section(root, "timings"), "th").map { $0.stringValue ?? "" }
        #expect(timings.contains("Run time") && timings.contains("Data loading") && timings.contains("Final test evaluation"))
        // Times a person reads: 95.5 s, not 0:01:35.500000.
        let values = xmlElements(try section(root, "timings"), "td").map { $0.stringValue ?? "" }
        #expect(values.first == "1 min 36 s")
    }

    @Test func runReportShowsConfusionMatrixAndPerClassFigures() throws {
        let report = makeReport(epochs: 2)
        let root = try #require(try parseXML(try report.html()).rootElement())
        let confusion = try section(root, "confusion")
        let cells = xmlElements(confusion, "rect", class: "cell")
        #expect(cells.count == 100)
        let matrix = try #require(report.results).confusionMatrix
        for cell in cells {
            #expect(xmlAttribute(cell, "data-value") == String(matrix[Int(xmlAttribute(cell, "data-row"))!][Int(xmlAttribute(cell, "data-column"))!]))
        }
        let rows = xmlElements(confusion, "tr").dropFirst().map { xmlElements($0, "td").map { $0.stringValue ?? "" } }
        #expect(rows.count == 10)
        #expect(rows[0] == ["0", "90.00%", "95.00%", String(matrix[0].reduce(0, +))])
        #expect(rows[3][1] == "-")  // no image predicted as 3
    }

    @Test func runReportEmbedsSamplesAndMistakesAsPNG() throws {
        let root = try #require(try parseXML(try makeReport(epochs: 1).html()).rootElement())
        for (id, count) in [("samples", 20), ("mistakes", 20)] {
            let figures = xmlElements(try section(root, id), "figure")
            #expect(figures.count == count)
            for figure in figures {
                let image = try #require(xmlElements(figure, "img").first)
                let src = xmlAttribute(image, "src")
                let data = try #require(Data(base64Encoded: String(src.dropFirst("data:image/png;base64,".count))))
                #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                // IHDR: 56x56 (28x28 scaled twice).
                #expect(Array(data[16..<24]) == [0, 0, 0, 56, 0, 0, 0, 56])
                let caption = xmlElements(figure, "figcaption").first?.stringValue ?? ""
                #expect(caption.count > 0)
            }
        }
        let captions = xmlElements(try section(root, "mistakes"), "figcaption").map { $0.stringValue ?? "" }
        #expect(captions.first == "0 \u{2192} 1")
    }

    @Test func comparisonReportOverlaysBothVariants() throws {
        let runs = ModelVariant.allCases.map { variant in
            ComparisonReport.Run(name: variant.rawValue, history: syntheticHistory(epochs: 3), seconds: 30,
                                 summary: ModelSummary(definition: .lenet(variant), batchSize: 32),
                                 reportLink: "\(variant.rawValue)/report.html")
        }
        let table = ExperimentComparison(runs.map { .init(model: ModelVariant(rawValue: $0.name)!, history: $0.history, seconds: $0.seconds) }).table
        let report = ComparisonReport(title: "LeNet vs LeNet-BN", settings: [.init("Epochs", "3")], machine: .current(),
                                      runs: runs, comparisonTable: table)
        let root = try #require(try parseXML(report.html()).rootElement())
        let charts = xmlElements(root, "g", class: "line-chart")
        #expect(charts.count == 2)
        for chart in charts {
            let series = xmlElements(chart, "polyline", class: "series")
            #expect(series.count == 4)
            #expect(series.allSatisfy { polylinePoints($0).count == 3 })
        }
        let pre = xmlElements(root, "pre").map { $0.stringValue ?? "" }
        #expect(pre.contains { $0.contains("first >= 98.0%") })
        #expect(pre.contains { $0.contains("Total params: 61,750") })
        #expect(xmlElements(root, "a").map { xmlAttribute($0, "href") } == ["lenet/report.html", "lenet-bn/report.html"])
    }

    @Test func machineInfoParsing() {
        #expect(MachineInfo.value(of: "model name", in: "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU\nflags : x", separator: ":") == "Intel(R) Xeon(R) CPU")
        #expect(MachineInfo.value(of: "PRETTY_NAME", in: "NAME=x\nPRETTY_NAME=\"Debian 12\"", separator: "=") == "\"Debian 12\"")
        #expect(MachineInfo.value(of: "missing", in: "a: b", separator: ":") == nil)
        let current = MachineInfo.current()
        #expect(current.logicalCores >= 1)
        #expect(!current.cpuModel.isEmpty && !current.operatingSystem.isEmpty)
    }
}
