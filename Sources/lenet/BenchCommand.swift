import ArgumentParser
import Foundation
import LeNetKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and inference speed, latency, load time and peak memory, against the FMA peak.",
        discussion: """
            Without --threads, measures on 1 thread and on every core (one thread per physical core),
            and reports each speed as a fraction of the machine's FMA peak measured in the same run.
            """
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
        // Without --threads: 1 thread and every core, each figure as a fraction of the FMA
        // peak measured here, on 1 thread and on all of them at once.
        let allThreads = work.threads ?? ComputeDevice.defaultThreads
        let threadCounts = work.threads != nil || allThreads == 1 ? [allThreads] : [1, allThreads]
        let probe = PeakProbe.measure(threads: allThreads)
        var reports: [BenchmarkReport] = []
        for threads in threadCounts {
            reports.append(try Benchmark.run(dataset: dataset, model: model, threads: threads,
                                             batchSize: work.batchSize, inferenceBatchSize: inferenceBatchSize,
                                             loadSeconds: loadSeconds, probe: probe))
        }
        if json {
            for report in reports { print(try report.json()) }
            return
        }
        func row(_ name: String, _ figure: (BenchmarkReport) -> String) -> String {
            name.padding(toLength: 30, withPad: " ", startingAt: 0)
                + reports.map { figure($0).padding(toLength: 26, withPad: " ", startingAt: 0) }.joined()
        }
        func percent(_ fraction: Double?) -> String { fraction.map { String(format: " (%.0f%% of peak)", $0 * 100) } ?? "" }
        print("model \(model.rawValue), batch \(work.batchSize)")
        print(String(format: "FMA peak: %.1f GFLOP/s on 1 thread, %.1f on %d (%.2fx)", probe.singleThreadGFLOPS,
                     probe.allThreadsGFLOPS, probe.threads, probe.speedup))
        print(row("", { "\($0.threads) thread\($0.threads == 1 ? "" : "s")" }))
        print(row("data load (70,000 images)", { String(format: "%.3f s", $0.loadSeconds) }))
        print(row("epoch (train + test)", { String(format: "%.3f s", $0.epochSeconds) + percent($0.epochFractionOfPeak) }))
        print(row("training", { String(format: "%.0f img/s", $0.trainImagesPerSecond) + percent($0.trainFractionOfPeak) }))
        print(row("inference (batch \(inferenceBatchSize))", {
            String(format: "%.0f img/s", $0.inferenceImagesPerSecond) + percent($0.inferenceFractionOfPeak)
        }))
        print(row("batch-1 latency", { String(format: "%.1f us", $0.batch1LatencyMicroseconds) }))
        print(row("peak resident memory", { String(format: "%.1f MB", $0.peakResidentMegabytes) }))
        if reports.count == 2 {
            print(String(format: "training speed-up 1 -> %d threads: %.2fx (FMA probe: %.2fx)", allThreads,
                         reports[1].trainImagesPerSecond / reports[0].trainImagesPerSecond, probe.speedup))
        }
    }
}
