import Foundation

extension MachineInfo {
    /// The machine as the report's table rows.
    public var rows: [ReportField] {
        [.init("CPU", cpuModel), .init("Logical cores", "\(logicalCores)"),
         .init("Memory", String(format: "%.1f GiB", Double(memoryBytes) / 1_073_741_824)),
         .init("Operating system", operatingSystem), .init("Kernel", kernel)]
    }
}

/// A name and a value, shown as a table row.
public struct ReportField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One 28x28 image with a caption, embedded in a report as a PNG data URI.
public struct ReportImage: Sendable {
    /// [28 * 28] row-major, 0 = background, 1 = ink.
    public var pixels: [Float]
    public var caption: String
    /// Longer text for the image's title (tooltip).
    public var detail: String

    public init(pixels: [Float], caption: String, detail: String = "") {
        self.pixels = pixels
        self.caption = caption
        self.detail = detail
    }

    /// The first `limit` images of a batch, captioned with their labels.
    public static func samples(_ batch: SampleBatch, limit: Int = 20, classNames: [String]) -> [ReportImage] {
        (0..<min(limit, batch.count)).map { i in
            let label = Int(batch.labels[i])
            let name = label < classNames.count ? classNames[label] : "\(label)"
            return ReportImage(pixels: Array(batch.images[i * DataSplit.pixelsPerImage..<(i + 1) * DataSplit.pixelsPerImage]),
                               caption: name, detail: "batch position \(i), label \(name)")
        }
    }

    /// Image `index` of a split.
    public static func image(_ index: Int, of split: DataSplit) -> [Float] {
        split.pixels[index * DataSplit.pixelsPerImage..<(index + 1) * DataSplit.pixelsPerImage].map { Float($0) / 255 }
    }

    /// PNG bytes: dark ink on white, scaled `scale` times.
    public func png(scale: Int = 2) throws -> Data {
        let grid = pixels.withUnsafeBufferPointer { ImageGrid.make(images: $0, count: 1, perRow: 1, scale: scale, gap: 0) }
        return try pngData(grid)
    }
}

/// PNG bytes of an image, encoded in memory (no temporary file: the report needs no writable $TMPDIR).
public func pngData(_ image: GreyImage) throws -> Data {
    Data(try encodePNG(grey: image.pixels, width: image.width, height: image.height, name: "image"))
}

/// What a finished model got right and wrong on the test set, for the report.
public struct ClassificationResults: Sendable {
    /// confusion[truth][predicted] = count.
    public var confusionMatrix: [[Int]]
    public var precision: [Double?]
    public var recall: [Double?]
    public var accuracy: Double
    public var loss: Double
    /// The most confident mistakes, most confident first.
    public var mistakes: [ReportImage]
    /// Seconds the evaluation took.
    public var seconds: Double

    public init(confusionMatrix: [[Int]], precision: [Double?], recall: [Double?], accuracy: Double, loss: Double,
                mistakes: [ReportImage], seconds: Double) {
        self.confusionMatrix = confusionMatrix
        self.precision = precision
        self.recall = recall
        self.accuracy = accuracy
        self.loss = loss
        self.mistakes = mistakes
        self.seconds = seconds
    }

    /// From an evaluation of `split`, with its `mistakes` most confident errors as images.
    public init(evaluation: Evaluation, split: DataSplit, classNames: [String], mistakes: Int = 20, seconds: Double) {
        func name(_ label: UInt8) -> String { Int(label) < classNames.count ? classNames[Int(label)] : "\(label)" }
        let images = evaluation.mostConfidentMistakes(mistakes).map { index in
            let truth = name(evaluation.labels[index]), predicted = name(evaluation.predictions[index])
            let confidence = String(format: "%.1f%%", Double(evaluation.confidences[index]) * 100)
            return ReportImage(pixels: ReportImage.image(index, of: split), caption: "\(truth) \u{2192} \(predicted)",
                               detail: "test image \(index): true \(truth), predicted \(predicted) with \(confidence)")
        }
        self.init(confusionMatrix: evaluation.confusionMatrix, precision: evaluation.precision, recall: evaluation.recall,
                  accuracy: evaluation.accuracy, loss: evaluation.loss, mistakes: images, seconds: seconds)
    }
}

/// `report.html` for one training run: one self-contained, well-formed XHTML file (inline
/// SVG, PNG images as data URIs, CSS in the head, no scripts, no network) that opens in any
/// browser and parses as XML.
public struct RunReport: Sendable {
    public var title: String
    public var settings: [ReportField]
    public var machine: MachineInfo
    public var summary: ModelSummary
    public var history: [EpochRecord]
    public var runSeconds: Double
    public var classNames: [String]
    public var results: ClassificationResults?
    public var samples: [ReportImage]
    /// What the samples are (e.g. which batch).
    public var samplesNote: String
    /// Extra timings (name, value) shown after the per-epoch ones.
    public var timings: [ReportField]
    /// Training images per epoch, for images/s.
    public var trainImages: Int

    public init(title: String, settings: [ReportField], machine: MachineInfo, summary: ModelSummary,
                history: [EpochRecord], runSeconds: Double, classNames: [String] = DatasetKind.mnist.classNames,
                results: ClassificationResults? = nil, samples: [ReportImage] = [], samplesNote: String = "",
                timings: [ReportField] = [], trainImages: Int = 60_000) {
        self.title = title
        self.settings = settings
        self.machine = machine
        self.summary = summary
        self.history = history
        self.runSeconds = runSeconds
        self.classNames = classNames
        self.results = results
        self.samples = samples
        self.samplesNote = samplesNote
        self.timings = timings
        self.trainImages = trainImages
    }

    public func html() throws -> String {
        var body = "<h1>\(HTML.escape(title))</h1>\n"
        if let last = history.last {
            let best = history.max { $0.testAccuracy < $1.testAccuracy } ?? last
            body += "<p class=\"headline\">Final test accuracy <strong>\(HTML.percent(last.testAccuracy))</strong>"
                + " (best \(HTML.percent(best.testAccuracy)) at epoch \(best.epoch)) after \(history.count) epoch\(history.count == 1 ? "" : "s")"
                + " in \(formatDuration(seconds: runSeconds)).</p>\n"
        }
        body += "<section id=\"settings\"><h2>Run settings and machine</h2><div class=\"columns\">"
            + HTML.fields(settings, caption: "Settings") + HTML.fields(machine.rows, caption: "Machine") + "</div></section>\n"
        body += "<section id=\"curves\"><h2>Accuracy and loss</h2>\n" + TrainingCurves.svg(history: history) + "</section>\n"
        body += "<section id=\"epochs\"><h2>Per epoch</h2>\n" + HTML.epochTable(history, trainImages: trainImages) + "</section>\n"
        body += "<section id=\"model\"><h2>Model</h2>\n<pre class=\"summary\">\(HTML.escape(summary.text))</pre></section>\n"
        if let results {
            body += "<section id=\"confusion\"><h2>Confusion matrix (test set)</h2>\n"
            body += "<p>Accuracy \(HTML.percent(results.accuracy)), loss \(String(format: "%.4f", results.loss)), "
                + "\(results.confusionMatrix.joined().reduce(0, +)) images. Rows: true class; columns: predicted class.</p>\n"
            body += "<div class=\"columns\">" + confusionSVG(results) + precisionRecallTable(results) + "</div></section>\n"
        }
        if !samples.isEmpty {
            body += "<section id=\"samples\"><h2>Training samples</h2>\n<p>\(HTML.escape(samplesNote))</p>\n"
                + (try HTML.gallery(samples)) + "</section>\n"
        }
        if let results {
            body += "<section id=\"mistakes\"><h2>Most confident mistakes (test set)</h2>\n"
                + "<p>The \(results.mistakes.count) test images the model got wrong with the highest probability; caption: true \u{2192} predicted.</p>\n"
                + (try HTML.gallery(results.mistakes)) + "</section>\n"
        }
        body += "<section id=\"timings\"><h2>Timings</h2>\n" + HTML.fields(timingRows, caption: nil) + "</section>\n"
        return HTML.page(title: title, body: body)
    }

    var timingRows: [ReportField] {
        var rows = [ReportField("Run time", formatDuration(seconds: runSeconds))]
        if !history.isEmpty {
            let mean = history.map(\.seconds).reduce(0, +) / Double(history.count)
            rows.append(.init("Mean epoch (train + test)", String(format: "%.2f s", mean)))
            rows.append(.init("Fastest epoch", String(format: "%.2f s", history.map(\.seconds).min() ?? 0)))
            rows.append(.init("Training images per second (whole epoch)", ModelSummary.grouped(Int((Double(trainImages) / mean).rounded()))))
        }
        if let results { rows.append(.init("Final test evaluation", String(format: "%.2f s", results.seconds))) }
        return rows + timings
    }

    func confusionSVG(_ results: ClassificationResults) -> String {
        HeatMap(title: "Confusion matrix", values: results.confusionMatrix.map { $0.map(Double.init) },
                rowLabels: classNames, columnLabels: classNames, rowAxisLabel: "True class",
                columnAxisLabel: "Predicted class").svg()
    }

    func precisionRecallTable(_ results: ClassificationResults) -> String {
        var s = "<table class=\"numbers\" id=\"per-class\"><thead><tr><th>Class</th><th>Precision</th><th>Recall</th><th>Images</th></tr></thead><tbody>\n"
        for (c, name) in classNames.enumerated() where c < results.confusionMatrix.count {
            let p = c < results.precision.count ? results.precision[c] : nil
            let r = c < results.recall.count ? results.recall[c] : nil
            s += "<tr><td>\(HTML.escape(name))</td><td>\(p.map { HTML.percent($0, decimals: 2) } ?? "-")</td>"
                + "<td>\(r.map { HTML.percent($0, decimals: 2) } ?? "-")</td><td>\(results.confusionMatrix[c].reduce(0, +))</td></tr>\n"
        }
        return s + "</tbody></table>"
    }
}

/// `report.html` for `lenet experiment`: both variants' curves overlaid, the comparison
/// table, per-epoch figures and each model's summary.
public struct ComparisonReport: Sendable {
    public struct Run: Sendable {
        public var name: String
        public var history: [EpochRecord]
        public var seconds: Double
        public var summary: ModelSummary
        /// Link to the run's own report, relative to the comparison report (nil: none).
        public var reportLink: String?

        public init(name: String, history: [EpochRecord], seconds: Double, summary: ModelSummary, reportLink: String? = nil) {
            self.name = name
            self.history = history
            self.seconds = seconds
            self.summary = summary
            self.reportLink = reportLink
        }
    }

    public var title: String
    public var settings: [ReportField]
    public var machine: MachineInfo
    public var runs: [Run]
    /// The plain-text comparison (ExperimentComparison.table).
    public var comparisonTable: String

    public init(title: String, settings: [ReportField], machine: MachineInfo, runs: [Run], comparisonTable: String) {
        self.title = title
        self.settings = settings
        self.machine = machine
        self.runs = runs
        self.comparisonTable = comparisonTable
    }

    public var curvesSVG: String { TrainingCurves.svg(runs.map { (name: $0.name, history: $0.history) }) }

    public func html() -> String {
        var body = "<h1>\(HTML.escape(title))</h1>\n"
        body += "<section id=\"comparison\"><h2>Comparison</h2>\n<pre class=\"summary\">\(HTML.escape(comparisonTable))</pre>\n"
        let links = runs.compactMap { run in run.reportLink.map { "<a href=\"\(HTML.escape($0))\">\(HTML.escape(run.name))</a>" } }
        if !links.isEmpty { body += "<p>Each model's own report: \(links.joined(separator: ", ")).</p>\n" }
        body += "</section>\n"
        body += "<section id=\"curves\"><h2>Accuracy and loss</h2>\n<p>Training dashed, test solid.</p>\n" + curvesSVG + "</section>\n"
        body += "<section id=\"settings\"><h2>Run settings and machine</h2><div class=\"columns\">"
            + HTML.fields(settings, caption: "Settings") + HTML.fields(machine.rows, caption: "Machine") + "</div></section>\n"
        for run in runs {
            body += "<section class=\"run\"><h2>\(HTML.escape(run.name))</h2>\n"
                + "<p>Run time \(formatDuration(seconds: run.seconds)).</p>\n"
                + HTML.epochTable(run.history, trainImages: nil)
                + "<pre class=\"summary\">\(HTML.escape(run.summary.text))</pre></section>\n"
        }
        return HTML.page(title: title, body: body)
    }
}

/// XHTML building blocks shared by the reports.
enum HTML {
    static func escape(_ text: String) -> String { SVG.escape(text) }

    static func percent(_ fraction: Double, decimals: Int = 2) -> String {
        String(format: "%.\(decimals)f%%", fraction * 100)
    }

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
        <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>\(escape(title))</title>
        <style>
        body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1040px; color: #222; padding: 0 16px; }
        h1 { font-size: 24px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
        table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
        th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
        table.numbers td, table.numbers th { text-align: right; }
        caption { text-align: left; font-weight: bold; padding: 4px 0; }
        pre.summary { font-size: 12px; background: #f7f7f7; padding: 10px; overflow-x: auto; }
        .columns { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
        .gallery { display: flex; flex-wrap: wrap; gap: 8px; }
        figure { margin: 0; text-align: center; font-size: 12px; }
        figure img { display: block; border: 1px solid #ccc; image-rendering: pixelated; }
        svg { max-width: 100%; height: auto; }
        </style>
        </head>
        <body>
        \(body)</body>
        </html>

        """
    }

    static func fields(_ fields: [ReportField], caption: String?) -> String {
        var s = "<table class=\"fields\">" + (caption.map { "<caption>\(escape($0))</caption>" } ?? "") + "<tbody>\n"
        for field in fields { s += "<tr><th>\(escape(field.name))</th><td>\(escape(field.value))</td></tr>\n" }
        return s + "</tbody></table>"
    }

    static func epochTable(_ history: [EpochRecord], trainImages: Int?) -> String {
        var s = "<table class=\"numbers epochs\"><thead><tr><th>Epoch</th><th>Train acc</th><th>Train loss</th>"
            + "<th>Test acc</th><th>Test loss</th><th>Seconds</th>" + (trainImages == nil ? "" : "<th>Images/s</th>")
            + "</tr></thead><tbody>\n"
        for r in history {
            s += "<tr><td>\(r.epoch)</td><td>\(percent(r.trainAccuracy))</td><td>\(String(format: "%.4f", r.trainLoss))</td>"
                + "<td>\(percent(r.testAccuracy))</td><td>\(String(format: "%.4f", r.testLoss))</td><td>\(String(format: "%.2f", r.seconds))</td>"
            if let trainImages { s += "<td>\(r.seconds > 0 ? ModelSummary.grouped(Int(Double(trainImages) / r.seconds)) : "-")</td>" }
            s += "</tr>\n"
        }
        return s + "</tbody></table>\n"
    }

    static func gallery(_ images: [ReportImage]) throws -> String {
        var s = "<div class=\"gallery\">\n"
        for image in images {
            let data = try image.png(scale: 2).base64EncodedString()
            s += "<figure title=\"\(escape(image.detail))\"><img src=\"data:image/png;base64,\(data)\" width=\"56\" height=\"56\" "
                + "alt=\"\(escape(image.detail.isEmpty ? image.caption : image.detail))\"/><figcaption>\(escape(image.caption))</figcaption></figure>\n"
        }
        return s + "</div>\n"
    }
}
