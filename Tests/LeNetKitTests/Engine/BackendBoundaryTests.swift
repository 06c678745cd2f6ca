import Foundation
@testable import LeNetKit
import Testing

/// A backend for tests: the CPU backend behind a wrapper that counts every call of the
/// `Network` protocol. Whatever holds it can reach the CPU network only through those
/// calls, so equal results prove that training, checkpoints, resume, evaluation and
/// prediction need nothing else from a backend, and the counts show how often the host
/// and the device talk.
final class CountingNetwork: Network, @unchecked Sendable {
    private let inner: any Network
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    init(_ inner: any Network) { self.inner = inner }

    /// How many times each protocol call was made.
    func count(_ call: String) -> Int { lock.withLock { counts[call, default: 0] } }
    private func note(_ call: String) { lock.withLock { counts[call, default: 0] += 1 } }

    var definition: ModelDefinition { inner.definition }
    var maxBatch: Int { inner.maxBatch }
    var isTrainable: Bool { inner.isTrainable }
    func load(_ parameters: ParameterStore) { note("load"); inner.load(parameters) }
    func snapshot() -> ParameterStore { note("snapshot"); return inner.snapshot() }
    var optimizer: SGD {
        get { inner.optimizer }
        set { note("setOptimizer"); inner.optimizer = newValue }
    }
    func attach(_ split: DataSplit, as role: SplitRole) { note("attach"); inner.attach(split, as: role) }
    func setOrder(_ order: [Int32], of role: SplitRole) { note("setOrder"); inner.setOrder(order, of: role) }
    func trainStep(_ batch: Range<Int>, key: StepKey) { note("trainStep"); inner.trainStep(batch, key: key) }
    func evaluate(_ batch: Range<Int>, of role: SplitRole, logits: UnsafeMutablePointer<Float>?) {
        note("evaluate")
        inner.evaluate(batch, of: role, logits: logits)
    }
    func totals(of role: SplitRole) -> StepTotals { note("totals"); return inner.totals(of: role) }
    func setTotals(_ totals: StepTotals, of role: SplitRole) { note("setTotals"); inner.setTotals(totals, of: role) }
    func infer(_ images: UnsafePointer<Float>, count: Int, logits: UnsafeMutablePointer<Float>) {
        note("infer")
        inner.infer(images, count: count, logits: logits)
    }

    /// A device whose networks are counting wrappers of CPU networks; `made` collects them.
    static func device(threads: Int = 2, made: CountingNetworks) -> ComputeDevice {
        ComputeDevice(name: "counting cpu") { definition, maxBatch, trainable in
            let network = CountingNetwork(try ComputeDevice.cpu(threads: threads).makeNetwork(
                definition, maxBatch: maxBatch, trainable: trainable))
            made.append(network)
            return network
        }
    }
}

/// The networks a counting device made, in order.
final class CountingNetworks: @unchecked Sendable {
    private let lock = NSLock()
    private var networks: [CountingNetwork] = []
    func append(_ network: CountingNetwork) { lock.withLock { networks.append(network) } }
    var all: [CountingNetwork] { lock.withLock { networks } }
}

@Suite struct BackendBoundaryTests {
    static func smallMNIST() throws -> Dataset {
        let full = try DataFixtures.mnist.get()
        return Dataset(train: full.train.prefix(640), test: full.test.prefix(200))  // 20 training batches
    }

    static func configuration(_ model: ModelVariant, epochs: Int) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = model
        configuration.epochs = epochs
        configuration.momentum = 0.9
        configuration.seed = 3
        return configuration
    }

    /// Training through the wrapper gives the CPU backend's results to the bit; the
    /// parameters cross the boundary once (the initial load) and step results are read
    /// twice an epoch (training and test sums), not once a step.
    @Test(arguments: [ModelVariant.lenet, .lenetBN])
    func trainingTalksToTheBackendOnlyThroughTheProtocol(model: ModelVariant) throws {
        let dataset = try Self.smallMNIST()
        let direct = try Trainer(configuration: Self.configuration(model, epochs: 2), dataset: dataset, device: .cpu(threads: 2))
        direct.run()
        let made = CountingNetworks()
        let counted = try Trainer(configuration: Self.configuration(model, epochs: 2), dataset: dataset,
                                  device: CountingNetwork.device(made: made))
        counted.run()

        #expect(counted.history.map(\.line) == direct.history.map(\.line))
        #expect(counted.network.snapshot().values.array == direct.network.snapshot().values.array)
        let network = try #require(made.all.first)
        #expect(made.all.count == 1)
        #expect(network.count("load") == 1)
        #expect(network.count("snapshot") == 1)  // the comparison above, none while training
        #expect(network.count("setOptimizer") == 1)
        #expect(network.count("attach") == 2)
        #expect(network.count("trainStep") == 2 * 20)
        #expect(network.count("setOrder") == 2)  // one shuffled order an epoch
        #expect(network.count("evaluate") == 2 * 7)  // 200 test images in batches of 32
        #expect(network.count("totals") == 2 * 2)
        #expect(network.count("infer") == 0)
    }

    /// Saving a run folder takes one snapshot; resuming from it loads once, and the
    /// resumed run ends where straight training ends.
    @Test func checkpointsAndResumeMoveParametersExplicitly() throws {
        let dataset = try Self.smallMNIST()
        let straight = try Trainer(configuration: Self.configuration(.lenetBN, epochs: 2), dataset: dataset,
                                   device: .cpu(threads: 2))
        straight.run()

        let made = CountingNetworks()
        let device = CountingNetwork.device(made: made)
        let first = try Trainer(configuration: Self.configuration(.lenetBN, epochs: 2), dataset: dataset, device: device)
        var steps = 0
        #expect(first.run(stoppingWhen: { steps += 1; return steps == 30 }) == .stopped)  // mid-epoch 2
        let folder = RunCheckpoints(directory: try DataFixtures.temporaryDirectory())
        try folder.saveState(first)
        #expect(made.all[0].count("snapshot") == 1)

        let resumed = try Trainer(resuming: folder.loadState(), dataset: dataset, device: device)
        let network = made.all[1]
        #expect(network.count("load") == 2)  // the fresh initialisation, then the saved state
        #expect(network.count("setTotals") == 1)  // the saved sums of the unfinished epoch
        resumed.run()
        #expect(resumed.history.map(\.line) == straight.history.map(\.line))
        try folder.save(resumed)
        #expect(network.count("snapshot") == 1)
        #expect(try Checkpoint(contentsOf: folder.lastPath).tensors == (try straight.state().model.tensors))
    }

    /// Evaluation and prediction load a checkpoint once and run only evaluation calls.
    @Test func evaluationAndPredictionUseTheProtocol() throws {
        let dataset = try Self.smallMNIST()
        let trainer = try Trainer(configuration: Self.configuration(.lenet, epochs: 1), dataset: dataset, device: .cpu(threads: 1))
        trainer.run()
        let checkpoint = try trainer.state().model
        let made = CountingNetworks()

        let evaluated = Evaluation(network: try checkpoint.makeNetwork(device: CountingNetwork.device(made: made), maxBatch: 50),
                                   split: dataset.test, batchSize: 50)
        let reference = Evaluation(network: try checkpoint.makeNetwork(device: .cpu(threads: 1), maxBatch: 50),
                                   split: dataset.test, batchSize: 50)
        #expect(evaluated.predictions == reference.predictions && evaluated.loss == reference.loss)
        let evaluator = made.all[0]
        #expect(!evaluator.isTrainable)
        #expect(evaluator.count("load") == 1 && evaluator.count("evaluate") == 4 && evaluator.count("trainStep") == 0)
        #expect(evaluator.count("totals") == 1)

        let predictor = try Predictor(checkpoint: checkpoint, device: CountingNetwork.device(made: made), maxBatch: 8)
        let images = (0..<10).map { index in
            (0..<DataSplit.pixelsPerImage).map { Float(dataset.test.pixels[index * DataSplit.pixelsPerImage + $0]) / 255 }
        }
        let predictions = try predictor.predict(prepared: images)
        #expect(predictions.map(\.digit) == Array(reference.predictions.prefix(10)).map(Int.init))
        let inference = made.all[1]
        #expect(inference.count("load") == 1 && inference.count("infer") == 2)  // 10 images, batches of 8
    }

    /// The optimizer is a description the backend applies: a learning rate set between two
    /// steps applies from the next step on.
    @Test func learningRateCanChangeBetweenSteps() throws {
        let dataset = try Self.smallMNIST()
        let network = try ComputeDevice.cpu(threads: 1).makeNetwork(.lenet(.lenet), maxBatch: 32)
        var generator = RandomGenerator(seed: 1)
        let initial = ParameterStore(definition: network.definition)
        initial.initialize(definition: network.definition, generator: &generator)
        network.load(initial)
        network.attach(dataset.train, as: .train)
        network.optimizer = SGD(learningRate: 0)
        network.trainStep(0..<32, key: StepKey(seed: 0, step: 0))
        #expect(network.snapshot().values.array == initial.values.array)
        #expect(network.totals(of: .train).batches == 1)
        network.optimizer.learningRate = 0.1
        network.trainStep(0..<32, key: StepKey(seed: 0, step: 1))
        let after = network.snapshot()
        #expect(after.values.array != initial.values.array)
        // Without momentum the update is w − lr·g with the last step's gradients.
        let (w0, g, w1) = (initial.values.array, after.gradients.array, after.values.array)
        var worst: Float = 0
        for i in w0.indices { worst = max(worst, abs(w1[i] - (w0[i] - 0.1 * g[i]))) }
        #expect(worst < 1e-6)
    }
}
