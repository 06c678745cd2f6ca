import Foundation
@testable import LeNetKit
import Testing

/// `lenet bench`'s peak: measured before and after the runs, the higher kept, the figures
/// re-expressed as fractions of it (Benchmark/PeakProbe.swift, Benchmark/Benchmark.swift).
@Suite struct BenchmarkReportTests {
    static func cpuReport(threads: Int, peak: Double, singlePeak: Double) -> BenchmarkReport {
        var report = BenchmarkReport(model: "lenet", threads: threads, gpu: nil, batchSize: 32, loadSeconds: 0.1,
                                     trainImagesPerSecond: 20_000, epochSeconds: 3, inferenceBatchSize: 1000,
                                     inferenceImagesPerSecond: 60_000, batch1LatencyMicroseconds: 10,
                                     peakResidentMegabytes: 100)
        report.peakSingleThreadGFLOPS = singlePeak
        report.peakGFLOPS = peak
        report.trainFractionOfPeak = 20_000 * Benchmark.trainingFLOPPerImage / (peak * 1e9)
        report.epochFractionOfPeak = Benchmark.epochFLOP / 3 / (peak * 1e9)
        report.inferenceFractionOfPeak = 60_000 * Benchmark.forwardFLOPPerImage / (peak * 1e9)
        return report
    }

    @Test func theBestOfTwoMeasurementsIsEachFiguresHigher() {
        let before = PeakProbe(singleThreadGFLOPS: 50, allThreadsGFLOPS: 95, threads: 2)
        let after = PeakProbe(singleThreadGFLOPS: 40, allThreadsGFLOPS: 100, threads: 2)
        #expect(PeakProbe.best(of: [before, after]) == PeakProbe(singleThreadGFLOPS: 50, allThreadsGFLOPS: 100, threads: 2))
        // The single-thread figures are 20% apart, the all-thread ones 5%: the larger counts.
        #expect(abs(PeakProbe.variation(of: [before, after]) - 0.2) < 1e-12)
        #expect(PeakProbe.variation(of: [before, before]) == 0)
        #expect(PeakProbe.variation(of: [after]) == 0)
    }

    /// Fractions re-expressed against another peak are the fractions measured against it:
    /// all threads' peak for a report of several, the 1-thread peak for a report of one.
    @Test(arguments: [1, 2])
    func fractionsFollowThePeak(threads: Int) {
        let measured = Self.cpuReport(threads: threads, peak: threads == 1 ? 40 : 80, singlePeak: 40)
        let higher = PeakProbe(singleThreadGFLOPS: 50, allThreadsGFLOPS: 96, threads: 2)
        let rescaled = measured.measured(against: higher)
        let expected = Self.cpuReport(threads: threads, peak: threads == 1 ? 50 : 96, singlePeak: 50)
        #expect(rescaled.peakGFLOPS == expected.peakGFLOPS)
        #expect(rescaled.peakSingleThreadGFLOPS == 50)
        for (got, want) in [(rescaled.trainFractionOfPeak, expected.trainFractionOfPeak),
                            (rescaled.epochFractionOfPeak, expected.epochFractionOfPeak),
                            (rescaled.inferenceFractionOfPeak, expected.inferenceFractionOfPeak)] {
            #expect(abs(got! - want!) <= 1e-12 * want!)
        }
        // The speeds themselves stay as measured.
        #expect(rescaled.trainImagesPerSecond == measured.trainImagesPerSecond)
        #expect(rescaled.inferenceImagesPerSecond == measured.inferenceImagesPerSecond)
    }

    /// A GPU's report has no fractions of the CPU's peak, before or after.
    @Test func aGPUReportKeepsNoFractions() throws {
        let gpu = BenchmarkReport(model: "lenet", threads: nil, gpu: "opencl (NVIDIA H200)", batchSize: 32,
                                  loadSeconds: 0.1, trainImagesPerSecond: 1e5, epochSeconds: 1, inferenceBatchSize: 1000,
                                  inferenceImagesPerSecond: 1e6, batch1LatencyMicroseconds: 50, peakResidentMegabytes: 300)
        let after = gpu.measured(against: PeakProbe(singleThreadGFLOPS: 50, allThreadsGFLOPS: 96, threads: 2))
        #expect(after.peakGFLOPS == nil && after.trainFractionOfPeak == nil && after.inferenceFractionOfPeak == nil)
        #expect(try after.json() == gpu.json())
    }
}
