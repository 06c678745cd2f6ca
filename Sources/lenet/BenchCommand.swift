import ArgumentParser
import Foundation
import LeNetKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and inference speed, latency, load time and peak memory."
    )

    @OptionGroup var data: DataOptions

    @Option(help: "lenet or lenet-bn.")
    var model: ModelVariant = .lenet

    @Option(help: "Compute threads (default: every core).")
    var threads: Int = ThreadPool.defaultThreadCount

    @Option(help: "Training batch size.")
    var batchSize = 32

    @Option(help: "Inference batch size.")
    var inferenceBatchSize = 1000

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let start = Date()
        let dataset = try Dataset.load(kind: data.dataset, dataDirectory: data.dataDirectory, download: true,
                                       progress: printToStandardError)
        let loadSeconds = Date().timeIntervalSince(start)
        let report = Benchmark.run(dataset: dataset, model: model, threads: threads, batchSize: batchSize,
                                   inferenceBatchSize: inferenceBatchSize, loadSeconds: loadSeconds)
        if json {
            print(try report.json())
        } else {
            print(String(format: """
                model %@, %d thread(s), batch %d
                data load (70,000 images)   %.3f s
                epoch (train + test)        %.3f s
                training                    %.0f images/s
                inference (batch %d)      %.0f images/s
                batch-1 latency             %.1f us
                peak resident memory        %.1f MB
                """, report.model, report.threads, report.batchSize, report.loadSeconds, report.epochSeconds,
                report.trainImagesPerSecond, report.inferenceBatchSize, report.inferenceImagesPerSecond,
                report.batch1LatencyMicroseconds, report.peakResidentMegabytes))
        }
    }
}
