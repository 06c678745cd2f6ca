import ArgumentParser
import Foundation
import LeNetKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and inference speed, latency, load time and peak memory, against the FMA peak.",
        discussion: """
            Without --threads, measures on 1 thread and on every core (one thread per physical core), \
            and reports each speed as a fraction of the machine's FMA peak measured in the same run. \
            With --device opencl or cuda, measures on that GPU instead (the batch-1 latency too): one \
            column, named after the GPU, and no fractions (the FMA peak is the CPU's).
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
        let start = Date()
        let dataset = try work.loadDataset()
        let loadSeconds = Date().timeIntervalSince(start)
        let allThreads = work.threads ?? ComputeDevice.defaultThreads
        let probe: PeakProbe?  // the CPU's FMA peak; a GPU's figures are not fractions of it
        var reports: [BenchmarkReport] = []
        if work.deviceChoice.kind == .cpu {
            // Without --threads: 1 thread and every core, each figure as a fraction of the FMA
            // peak measured here, on 1 thread and on all of them at once. The peak is measured
            // before the runs and again after them, since on a VM whose cores other tenants
            // share one measurement can catch a busy moment: the fractions are of the higher,
            // and the table says how far apart the two were.
            let threadCounts = work.threads != nil || allThreads == 1 ? [allThreads] : [1, allThreads]
            let before = PeakProbe.measure(threads: allThreads)
            for threads in threadCounts {
                reports.append(try Benchmark.run(dataset: dataset, model: model, device: .cpu(threads: threads),
                                                 batchSize: work.batchSize, inferenceBatchSize: inferenceBatchSize,
                                                 loadSeconds: loadSeconds, probe: before))
            }
            let measurements = [before, PeakProbe.measure(threads: allThreads)]
            let cpuPeak = PeakProbe.best(of: measurements)
            let variation = PeakProbe.variation(of: measurements)
            probe = cpuPeak
            reports = reports.map { report in
                var report = report.measured(against: cpuPeak)
                report.peakVariation = variation
                return report
            }
        } else {
            probe = nil
            reports.append(try Benchmark.run(dataset: dataset, model: model, device: work.device, batchSize: work.batchSize,
                                             inferenceBatchSize: inferenceBatchSize, loadSeconds: loadSeconds))
        }
        if json {
            for report in reports { print(try report.json()) }
            return
        }
        // Columns padded, never cut: a GPU's name may be longer than the CPU's column.
        func padded(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text.padding(toLength: width, withPad: " ", startingAt: 0)
        }
        func row(_ name: String, _ figure: (BenchmarkReport) -> String) -> String {
            padded(name, 30) + reports.map { padded(figure($0), 26) }.joined()
        }
        func percent(_ fraction: Double?) -> String { fraction.map { String(format: " (%.0f%% of peak)", $0 * 100) } ?? "" }
        print("model \(model.rawValue), batch \(work.batchSize)")
        if let probe {
            let variation = reports.first?.peakVariation ?? 0
            print(String(format: "FMA peak: %.1f GFLOP/s on 1 thread, %.1f on %d (%.2fx), the higher of before and after the runs (%.0f%% apart)",
                         probe.singleThreadGFLOPS, probe.allThreadsGFLOPS, probe.threads, probe.speedup, variation * 100))
            if variation > 0.1 {
                print("The machine's speed changed during the runs (other work on its cores?): each fraction of peak is uncertain by about as much.")
            }
        }
        print(row("", \.deviceName))
        let images = ModelSummary.grouped(dataset.train.count + dataset.test.count)
        print(row("data load (\(images) images)", { String(format: "%.3f s", $0.loadSeconds) }))
        print(row("epoch (train + test)", { String(format: "%.3f s", $0.epochSeconds) + percent($0.epochFractionOfPeak) }))
        print(row("training", { String(format: "%.0f img/s", $0.trainImagesPerSecond) + percent($0.trainFractionOfPeak) }))
        print(row("inference (batch \(inferenceBatchSize))", {
            String(format: "%.0f img/s", $0.inferenceImagesPerSecond) + percent($0.inferenceFractionOfPeak)
        }))
        print(row("batch-1 latency", { String(format: "%.1f us", $0.batch1LatencyMicroseconds) }))
        print(row("peak resident memory", { String(format: "%.1f MB", $0.peakResidentMegabytes) }))
        if reports.count == 2, let probe {
            print(String(format: "training speed-up 1 -> %d threads: %.2fx (FMA probe: %.2fx)", allThreads,
                         reports[1].trainImagesPerSecond / reports[0].trainImagesPerSecond, probe.speedup))
        }
    }
}
