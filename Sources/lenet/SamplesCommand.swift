import ArgumentParser
import Foundation
import LeNetKit

struct SamplesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samples",
        abstract: "Show the first training batch: its shape, a PNG of 20 images, and the digits on a terminal."
    )

    @OptionGroup var data: DataOptions

    @Option(parsing: .unconditional, help: "Images per batch.")
    var batchSize = 32

    @Option(parsing: .unconditional, help: "Seed of the generator that shuffles the training set.")
    var seed: UInt64 = 0

    @Option(help: "Where to write the PNG grid (2 rows of 10, each image's label under it).")
    var output = "samples.png"

    @Flag(help: "Draw the images in the terminal even when standard output is not one ($COLUMNS wide, else the terminal's width, else 10 a line).")
    var terminal = false

    @Flag(help: "Never download; fail if the files are missing.")
    var noDownload = false

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let dataset = try Dataset.load(
            kind: data.dataset, dataDirectory: data.dataDirectory,
            download: !noDownload, progress: printToStandardError)
        let batch = SampleBatch(firstBatchOf: dataset.train, batchSize: batchSize, seed: seed)
        print("Batch shape: [\(batch.shape.map(String.init).joined(separator: ", "))]")
        let shown = min(20, batch.count)
        try batch.grid(limit: shown).writePNG(to: output)
        print("Wrote \(output) (first \(shown) images, up to 10 per row)")
        if terminal || isatty(STDOUT_FILENO) != 0 {
            let perRow = Self.terminalColumns().map { min(10, TerminalImage.imagesPerLine(columns: $0)) } ?? 10
            print(batch.terminalDrawing(limit: shown, perRow: perRow, classNames: dataset.kind.classNames), terminator: "")
        }
    }

    /// The width to draw in: $COLUMNS when set (as most tools read it), else the width of the
    /// terminal on standard output or standard error; nil when there is neither.
    static func terminalColumns() -> Int? {
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap({ Int($0) }), columns > 0 { return columns }
        var size = winsize()
        for descriptor in [STDOUT_FILENO, STDERR_FILENO] where ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 {
            return Int(size.ws_col)
        }
        return nil
    }
}
