import Foundation
@testable import LeNetKit
import Testing

/// `--device opencl` (or `cuda`: the tests' runtime, GPUTestDevice) on the commands that run
/// a trained network or measure speed, through the built `lenet` (on PoCL in CI): predict
/// and serve give what the CPU gives, bench measures the GPU. Each `lenet` started compiles
/// the kernels again (a few seconds on PoCL), so there are few of them. Without a device
/// they skip, or fail when LENET_REQUIRE_GPU=1.
@Suite struct GPUCommandTests {
    static let tolerance: Float = 1e-4

    /// A checkpoint trained here for 300 batches (~97% on MNIST): its predictions are
    /// confident, so no near-tie between two digits decides a comparison.
    static func trainedCheckpoint(into directory: String) throws -> String {
        var configuration = TrainingConfiguration()
        configuration.epochs = 1
        configuration.batchLimit = 300
        configuration.momentum = 0.9
        configuration.seed = 1
        let trainer = try Trainer(configuration: configuration, dataset: DataFixtures.mnist.get())
        trainer.run()
        let path = directory + "/model.safetensors"
        try Checkpoint(store: trainer.network.snapshot(), variant: .lenet).write(to: path)
        return path
    }

    /// The fixture pictures that decode (not the `bad-` ones).
    static var fixturePictures: [String] {
        DataFixtures.files(in: InferenceDecoderTests.directory)
            .filter { !$0.hasPrefix("bad-") && ["png", "pgm", "ppm"].contains(($0 as NSString).pathExtension) }
            .map { InferenceDecoderTests.directory + "/" + $0 }
    }

    static func expectClose(_ gpu: [Float], _ cpu: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(gpu.count == 10 && cpu.count == 10, "\(what): \(gpu.count) and \(cpu.count) probabilities",
                sourceLocation: sourceLocation)
        let worst = zip(gpu, cpu).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= tolerance, "\(what): probabilities differ by \(worst)", sourceLocation: sourceLocation)
    }

    @Test func predictOnTheGPUPrintsWhatTheCPUPrints() throws {
        guard let device = GPUTestDevice.get() else { return }
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let checkpoint = try Self.trainedCheckpoint(into: directory)
        let pictures = Self.fixturePictures
        #expect(pictures.count >= 20)
        let arguments = ["predict", "--checkpoint", checkpoint, "--json", "--top", "10"] + pictures
        var lines: [String: [[String: Any]]] = [:]
        for backend in ["cpu", device.kind.rawValue] {
            let outcome = try CommandLineTests.run(arguments + ["--device", backend])
            #expect(outcome.status == 0, "--device \(backend): \(outcome.stderr)")
            lines[backend] = outcome.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let cpu = lines["cpu"] ?? [], gpu = lines[device.kind.rawValue] ?? []
        #expect(cpu.count == pictures.count && gpu.count == pictures.count, "\(cpu.count) and \(gpu.count) lines")
        for (onCPU, onGPU) in zip(cpu, gpu) {
            let file = onCPU["file"] as? String ?? "?"
            #expect(onGPU["file"] as? String == file)
            #expect(onGPU["digit"] as? Int == onCPU["digit"] as? Int, "\(file): \(onGPU["digit"] ?? "none") on \(device.kind.displayName)")
            Self.expectClose((onGPU["probabilities"] as? [Double] ?? []).map(Float.init),
                             (onCPU["probabilities"] as? [Double] ?? []).map(Float.init), file)
        }
    }

    /// Requests at once, prepared side by side and answered by the one GPU network in
    /// turn, each as serve's API answers it on the CPU in this process.
    @Test func serveOnTheGPUAnswersAsTheCPUDoes() async throws {
        guard let device = GPUTestDevice.get() else { return }
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let checkpoint = try Self.trainedCheckpoint(into: directory)
        let server = try InferenceServeTests.Server(["--device", device.kind.rawValue, "--max-predictions", "4"], checkpoint: checkpoint)
        #expect(server.announcement.contains("with \(device.kind.rawValue) (\(device.runtime.device.name)) on http://"), "\(server.announcement)")
        let cpu = PredictionAPI(predictor: try Predictor(checkpointPath: checkpoint))
        let test = try DataFixtures.mnist.get().test
        let bodies = (0..<16).map { i in
            Data("{\"pixels\": [\((0..<784).map { "\(Float(test.pixels[i * 784 + $0]) / 255)" }.joined(separator: ","))]}".utf8)
        }
        let answers = try await withThrowingTaskGroup(of: (Int, Int, Data).self) { group in
            for (index, body) in bodies.enumerated() {
                group.addTask {
                    let (status, _, data) = try await server.rawRequest("api/predict", method: "POST", body: body,
                                                                        type: "application/json")
                    return (index, status, data)
                }
            }
            return try await group.reduce(into: [Int: (Int, Data)]()) { $0[$1.0] = ($1.1, $1.2) }
        }
        func object(_ data: Data) -> [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
        for (index, body) in bodies.enumerated() {
            let expected = cpu.predict(body: [UInt8](body), contentType: "application/json")
            let onCPU = object(Data(expected.body.utf8))
            let (status, data) = try #require(answers[index])
            let onGPU = object(data)
            #expect(expected.status == 200 && status == 200, "image \(index): \(status) \(String(decoding: data, as: UTF8.self))")
            #expect(onGPU["digit"] as? Int == onCPU["digit"] as? Int, "image \(index): \(onGPU["digit"] ?? "none") on \(device.kind.displayName)")
            Self.expectClose((onGPU["probabilities"] as? [Double] ?? []).map(Float.init),
                             (onCPU["probabilities"] as? [Double] ?? []).map(Float.init), "image \(index)")
        }
    }

    /// `lenet bench --device opencl` (or cuda) on a small dataset (64 training and 32 test images): the
    /// table's column is the GPU, every figure is there, no FMA peak or fraction of it; the
    /// JSON line says the same.
    @Test func benchOnTheGPUMeasuresItWithoutTheCPUsPeak() throws {
        guard let device = GPUTestDevice.get() else { return }
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try DataFixtures.writeSmallDataset(in: directory, trainCount: 64, testCount: 32)
        let arguments = ["bench", "--device", device.kind.rawValue, "--data-dir", directory, "--no-download", "--inference-batch-size", "32"]
        let gpuName = "\(device.kind.rawValue) (\(device.runtime.device.name))"

        let table = try CommandLineTests.run(arguments)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "model lenet, batch 32", "\(table.stdout)")
        #expect(lines.count > 1 && lines[1].trimmingCharacters(in: .whitespaces) == gpuName, "\(table.stdout)")
        for row in ["data load (96 images)", "epoch (train + test)", "training", "inference (batch 32)", "batch-1 latency",
                    "peak resident memory"] {
            #expect(lines.contains { $0.hasPrefix(row) && $0.count > 30 }, "no \(row) figure: \(table.stdout)")
        }
        #expect(!table.stdout.contains("FMA") && !table.stdout.contains("of peak") && !table.stdout.contains("speed-up"),
                "\(table.stdout)")

        let json = try CommandLineTests.run(arguments + ["--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let objects = json.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let report = try #require(objects.count == 1 ? objects.first : nil, "\(json.stdout)")
        #expect(report["gpu"] as? String == gpuName)
        for absent in ["threads", "peakGFLOPS", "peakSingleThreadGFLOPS", "trainFractionOfPeak", "epochFractionOfPeak",
                       "inferenceFractionOfPeak"] {
            #expect(report[absent] == nil, "\(absent) in \(json.stdout)")
        }
        for figure in ["trainImagesPerSecond", "inferenceImagesPerSecond", "epochSeconds", "batch1LatencyMicroseconds"] {
            #expect((report[figure] as? Double ?? 0) > 0, "\(figure) in \(json.stdout)")
        }
    }
}
