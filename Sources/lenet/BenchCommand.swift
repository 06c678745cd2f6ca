import ArgumentParser
import Foundation
import LeNetKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and inference speed, latency, load time and peak memory."
    )

    @OptionGroup var work: WorkOptions

    @Option(help: "lenet or lenet-bn.")
    var model: ModelVariant = .lenet

    @Option(parsing: .unconditional, help: "Inference batch size.")
    var inferenceBatchSize = 1000

    func validate() throws {
        do { try validateBatchSize(inferenceBatchSize) } catch {
            throw ValidationError("--inference-batch-size must be between 1 and \(TrainingConfiguration.maxBatchSize)")
        }
    }

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        if work.deviceKind != .cpu {  // validate() has found the runtime
            throw CommandError("lenet bench measures the CPU backend only so far; run it without --device \(work.deviceKind.rawValue)")
        }
        let start = Date()
        let dataset = try work.loadDataset()
        let loadSeconds = Date().timeIntervalSince(start)
        let report = try Benchmark.run(dataset: dataset, model: model, threads: work.threads ?? ComputeDevice.availableCores,
                                       batchSize: work.batchSize, inferenceBatchSize: inferenceBatchSize,
                                       loadSeconds: loadSeconds)
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
