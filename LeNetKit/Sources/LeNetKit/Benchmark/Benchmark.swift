import Foundation

/// Speed figures of this machine for `lenet bench`, on the CPU backend or a GPU: training
/// and inference throughput, batch-1 latency, data load time and peak memory.
public struct BenchmarkReport: Codable, Sendable {
    public var model: String
    /// The CPU backend's compute threads; nil when measured on a GPU (see `gpu`).
    public var threads: Int?
    /// The GPU measured, as its `ComputeDevice` names it (e.g. `opencl (NVIDIA H200)`);
    /// nil on the CPU backend.
    public var gpu: String?
    public var batchSize: Int
    public var loadSeconds: Double
    public var trainImagesPerSecond: Double
    /// One epoch as `lenet train` runs it: 60,000 training images then the 10,000 test images.
    public var epochSeconds: Double
    public var inferenceBatchSize: Int
    public var inferenceImagesPerSecond: Double
    public var batch1LatencyMicroseconds: Double
    public var peakResidentMegabytes: Double
    /// The FMA peak measured in the same run (`PeakProbe`), GFLOP/s: on 1 thread, and on
    /// `threads` threads together (the same as the first when `threads` is 1). Nil on a GPU,
    /// as are the fractions below: the probe measures the CPU.
    public var peakSingleThreadGFLOPS: Double?
    public var peakGFLOPS: Double?
    /// How much the FMA peak measured before and after the figures differed
    /// (`PeakProbe.variation`; the peak above is the higher): the fractions below are
    /// uncertain by about as much. Nil where the peak was measured once, and on a GPU.
    public var peakVariation: Double?
    /// Each figure's arithmetic rate as a fraction of `peakGFLOPS` (FLOP counts: `Benchmark.trainingFLOPPerImage`...).
    public var trainFractionOfPeak: Double?
    public var epochFractionOfPeak: Double?
    public var inferenceFractionOfPeak: Double?
}

extension BenchmarkReport {
    /// What the figures were measured on, for a table's column: `2 threads`, or the GPU's name.
    public var deviceName: String {
        if let gpu { return gpu }
        let threads = threads ?? 1
        return "\(threads) thread\(threads == 1 ? "" : "s")"
    }

    /// One line of compact JSON, keys in alphabetical order (`lenet bench --json`). Throws
    /// for a NaN or infinite figure, which JSON cannot hold.
    public func json() throws -> String {
        // Keys in alphabetical order; the optional ones only when set (as JSONEncoder does).
        let fields: [(String, JSONValue?)] = [
            ("batch1LatencyMicroseconds", try JSONValue(batch1LatencyMicroseconds)),
            ("batchSize", JSONValue(batchSize)),
            ("epochFractionOfPeak", try epochFractionOfPeak.map { try JSONValue($0) }),
            ("epochSeconds", try JSONValue(epochSeconds)),
            ("gpu", gpu.map { .string($0) }),
            ("inferenceBatchSize", JSONValue(inferenceBatchSize)),
            ("inferenceFractionOfPeak", try inferenceFractionOfPeak.map { try JSONValue($0) }),
            ("inferenceImagesPerSecond", try JSONValue(inferenceImagesPerSecond)),
            ("loadSeconds", try JSONValue(loadSeconds)),
            ("model", .string(model)),
            ("peakGFLOPS", try peakGFLOPS.map { try JSONValue($0) }),
            ("peakResidentMegabytes", try JSONValue(peakResidentMegabytes)),
            ("peakSingleThreadGFLOPS", try peakSingleThreadGFLOPS.map { try JSONValue($0) }),
            ("peakVariation", try peakVariation.map { try JSONValue($0) }),
            ("threads", threads.map { JSONValue($0) }),
            ("trainFractionOfPeak", try trainFractionOfPeak.map { try JSONValue($0) }),
            ("trainImagesPerSecond", try JSONValue(trainImagesPerSecond)),
        ]
        return JSONWriter.text(.object(fields.compactMap { key, value in value.map { (key, $0) } }), .compact)
    }

    /// The same figures as fractions of `probe`'s peak instead of the one they were measured
    /// against (`lenet bench` takes the higher of a peak measured before and after its runs).
    /// A GPU's report, which has no fractions, is returned as it is.
    public func measured(against probe: PeakProbe) -> BenchmarkReport {
        guard let threads, let oldPeak = peakGFLOPS, oldPeak > 0 else { return self }
        let newPeak = threads == 1 ? probe.singleThreadGFLOPS : probe.allThreadsGFLOPS
        guard newPeak > 0 else { return self }
        let scale = oldPeak / newPeak
        var report = self
        report.peakSingleThreadGFLOPS = probe.singleThreadGFLOPS
        report.peakGFLOPS = newPeak
        report.trainFractionOfPeak = trainFractionOfPeak.map { $0 * scale }
        report.epochFractionOfPeak = epochFractionOfPeak.map { $0 * scale }
        report.inferenceFractionOfPeak = inferenceFractionOfPeak.map { $0 * scale }
        return report
    }
}

public enum Benchmark {
    /// LeNet's arithmetic per image (BENCHMARKS.md): a forward pass 416,520 multiply-adds
    /// (0.83 MFLOP), a training step 1.13M (2.26 MFLOP; conv1 needs no input gradient).
    public static let forwardFLOPPerImage = 0.83e6
    public static let trainingFLOPPerImage = 2.26e6
    /// One epoch as `lenet train` runs it: 60,000 training images, then 10,000 evaluated (143.9 GFLOP).
    public static let epochFLOP = 60_000 * trainingFLOPPerImage + 10_000 * forwardFLOPPerImage
    /// The tutorial's run: 8 epochs (~1.15 TFLOP).
    public static let tutorialRunFLOP = 8 * epochFLOP

    /// Measures on `device` with the data already loaded by the caller (`loadSeconds` is
    /// passed through): one epoch (train + test), training throughput over `trainBatches`
    /// batches (nil: an epoch's), inference throughput over the test set in batches of
    /// `inferenceBatchSize`, and the latency of one image end to end.
    ///
    /// On the CPU backend the batch-1 latency is measured on one thread (one image is too
    /// little work to share), and each speed is also reported as a fraction of the FMA peak:
    /// `probe`, measured in the same run (nil: measured here). On any other device, a GPU,
    /// everything runs on it and the peak and fractions are nil (`probe` is not used).
    public static func run(dataset: Dataset, model: ModelVariant, device: ComputeDevice, batchSize: Int,
                           inferenceBatchSize: Int, loadSeconds: Double, trainBatches: Int? = nil,
                           probe: PeakProbe? = nil) throws -> BenchmarkReport {
        var configuration = TrainingConfiguration()
        configuration.model = model
        configuration.batchSize = batchSize
        configuration.epochs = 1
        let trainer = try Trainer(configuration: configuration, dataset: dataset, device: device)

        // A full epoch (train + test), as `lenet train` runs it.
        let epochStart = now()
        trainer.runEpoch()
        let epochSeconds = now() - epochStart

        // Training throughput alone, on a second epoch's order.
        let network = trainer.network
        var generator = RandomGenerator(seed: 1)
        var sampler = BatchSampler(count: dataset.train.count, batchSize: batchSize, shuffle: true)
        sampler.startEpoch(using: &generator)
        network.setOrder(sampler.order, of: .train)
        network.setTotals(.zero, of: .train)
        let batches = min(trainBatches ?? sampler.batchCount, sampler.batchCount)
        let trainStart = now()
        for (step, batch) in sampler.batches.prefix(batches).enumerated() {
            network.trainStep(batch, key: StepKey(seed: 1, step: UInt64(step)))
        }
        // Reading the totals waits for the steps a GPU still has queued.
        let trainedImages = network.totals(of: .train).images
        let trainImagesPerSecond = Double(trainedImages) / (now() - trainStart)
        let trained = network.snapshot()

        // Inference over the test set in large batches.
        let inference = try device.makeNetwork(ModelDefinition.lenet(model), maxBatch: inferenceBatchSize, trainable: false)
        inference.load(trained)
        inference.attach(dataset.test, as: .test)
        let testBatches = BatchSampler(count: dataset.test.count, batchSize: inferenceBatchSize, shuffle: false)
        func inferTestSet() {
            for batch in testBatches.batches { inference.evaluate(batch, of: .test, logits: nil) }
            _ = inference.totals(of: .test)  // waits for the batches a GPU still has queued
        }
        inferTestSet()  // warm-up
        var best = Double.infinity
        for _ in 0..<5 {
            let start = now()
            inferTestSet()
            best = min(best, now() - start)
        }
        let inferenceImagesPerSecond = Double(dataset.test.count) / best

        // One image end to end in-process: gather, forward, logits back to the host, argmax.
        let latencyDevice = device.cpuThreads == nil ? device : .cpu(threads: 1)
        let single = try latencyDevice.makeNetwork(ModelDefinition.lenet(model), maxBatch: 1, trainable: false)
        single.load(trained)
        single.attach(dataset.test, as: .test)
        let classes = single.definition.classes
        let logits = FloatBuffer(count: classes)
        var sink = 0
        func classifyOneByOne(_ count: Int) -> Double {  // seconds
            let start = now()
            for i in 0..<count {
                let image = i % dataset.test.count  // a test set of fewer images starts over
                single.evaluate(image..<(image + 1), of: .test, logits: logits.pointer)
                sink &+= softmaxArgmax(logits.pointer, classes: classes).index
            }
            return now() - start
        }
        // Rounds of 2,000 images, or fewer where one takes long (OpenCL on a CPU: ~2 ms),
        // so that a round lasts about half a second at most. The first round warms up.
        let secondsPerImage = max(classifyOneByOne(20) / 20, 1e-9)
        let repeats = max(20, min(2000, Int(0.5 / secondsPerImage)))
        var latencies: [Double] = []
        for round in 0..<3 {
            let seconds = classifyOneByOne(repeats)
            if round > 0 { latencies.append(seconds / Double(repeats) * 1e6) }
        }
        _ = sink

        var report = BenchmarkReport(model: model.rawValue, threads: device.cpuThreads,
                                     gpu: device.cpuThreads == nil ? device.name : nil, batchSize: batchSize,
                                     loadSeconds: loadSeconds, trainImagesPerSecond: trainImagesPerSecond,
                                     epochSeconds: epochSeconds, inferenceBatchSize: inferenceBatchSize,
                                     inferenceImagesPerSecond: inferenceImagesPerSecond,
                                     batch1LatencyMicroseconds: latencies.min() ?? 0,
                                     peakResidentMegabytes: peakResidentMegabytes())
        // The FMA peak is the CPU's: a GPU's speed as a fraction of it would mean nothing.
        if let threads = device.cpuThreads {
            let probe = probe ?? PeakProbe.measure(threads: threads)
            let peak = (threads == 1 ? probe.singleThreadGFLOPS : probe.allThreadsGFLOPS) * 1e9
            let epochLength = Double(dataset.train.count) * trainingFLOPPerImage + Double(dataset.test.count) * forwardFLOPPerImage
            report.peakSingleThreadGFLOPS = probe.singleThreadGFLOPS
            report.peakGFLOPS = peak / 1e9
            report.trainFractionOfPeak = trainImagesPerSecond * trainingFLOPPerImage / peak
            report.epochFractionOfPeak = epochLength / epochSeconds / peak
            report.inferenceFractionOfPeak = inferenceImagesPerSecond * forwardFLOPPerImage / peak
        }
        return report
    }

    /// Peak resident set size of this process so far.
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
