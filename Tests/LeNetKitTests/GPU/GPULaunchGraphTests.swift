import Foundation
@testable import LeNetKit
import Testing

/// GPUNetwork's plans replayed as graphs, without a GPU: a recording runtime stands in for
/// one, and its graph (`RecordingGraph`) keeps its own copy of each launch, updated only
/// from the launches the graph reports changed, as `CUDALaunchGraph` updates the driver's
/// nodes. Replayed as a graph, launch by launch, or after a graph failed to be made, the
/// same steps must issue the same launches in the same order with the same arguments.
///
/// The CUDA graph itself (`CUDALaunchGraph`) needs an NVIDIA GPU: here only its struct
/// layout is checked.
@Suite struct GPULaunchGraphTests {
    /// Every path issues exactly the launch-by-launch path's launches, step after step,
    /// with the batch starts, dropout keys and learning rates each step patched in.
    @Test func graphReplaysIssueTheLaunchesOfLaunchByLaunch() throws {
        let byLaunch = RecordingRuntime(graphs: .launchByLaunch), byGraph = RecordingRuntime(graphs: .recording)
        let failing = RecordingRuntime(graphs: .failing)
        var warnings: [String] = []
        for runtime in [byLaunch, byGraph, failing] {
            try Self.runSteps(on: runtime) { warnings.append($0) }
        }
        #expect(!byLaunch.launches.isEmpty)
        // Compared through the first difference: a failure then names one launch, not thousands.
        #expect(firstDifference(byGraph.launches, byLaunch.launches) == nil)
        #expect(firstDifference(failing.launches, byLaunch.launches) == nil)
        #expect(byLaunch.graphs.isEmpty && failing.graphs.isEmpty)
        // One graph per plan: train 32 and 16, test 32 and 8, infer 3, the staged step, train 32 on the new split.
        #expect(byGraph.graphs.count == 7)
        // The one line on the failure, once, although every plan after it would have asked.
        #expect(warnings.count == 1 && warnings.allSatisfy { !$0.contains("\n") && $0.contains("no graphs here") },
                "\(warnings)")

        // The patched values themselves: each step's batch start, dropout key, learning rate.
        let gathers = byLaunch.launches.filter { $0.kernel == "gather_batch" }
        // Five training steps, two test batches, the step on the new split, a test batch.
        let offsets: [Int32] = [0, 32, 64, 0, 32, 0, 32, 0, 0]
        #expect(gathers.map { $0.arguments[5] } == offsets.map { RecordedArgument.int($0) })
        let dropouts = byLaunch.launches.filter { $0.kernel == "dropout_forward" && $0.arguments[4] != .float(0) }
        let dropoutArguments: [[RecordedArgument]] = [
            [.uint(99), .uint(0), .uint(0), .uint(0)], [.uint(99), .uint(0), .uint(1), .uint(0)],
            [.uint(99), .uint(0), .uint(2), .uint(0)], [.uint(99), .uint(0), .uint(3), .uint(0)],
            [.uint(0x9abc_def0), .uint(0x1234_5678), .uint(0), .uint(2)], [.uint(7), .uint(0), .uint(0), .uint(0)],
        ]
        #expect(dropouts.map { Array($0.arguments[6...9]) } == dropoutArguments)
        let updates = byLaunch.launches.filter { $0.kernel == "sgd_update" }.map { $0.arguments[4...7] }
        let perStep = ModelDefinition.lenet(.lenetBN).layers.flatMap(\.parameterShapes).count
        #expect(updates.count == 7 * perStep)  // 6 steps on splits, 1 staged
        let learningRates = stride(from: 0, to: updates.count, by: perStep).map { updates[$0].first! }
        #expect(learningRates == [0.05, 0.05, 0.05, 0.01, 0.01, 0.01, 0.01].map { RecordedArgument.float($0) })
        let firstSteps = stride(from: 0, to: updates.count, by: perStep).map { updates[$0].last! }
        #expect(firstSteps == [1, 0, 0, 0, 0, 0, 0].map { RecordedArgument.int($0) })
    }

    /// A replay hands on only the launches whose arguments changed: on a step that only
    /// moves the batch and the dropout key, the gather and the dropout launch.
    @Test func aReplayUpdatesOnlyTheChangedLaunches() throws {
        let runtime = RecordingRuntime(graphs: .recording)
        try Self.runSteps(on: runtime) { Issue.record("unexpected warning: \($0)") }
        let trainGraph = runtime.graphs[0]
        let parameters = ModelDefinition.lenet(.lenetBN).layers.flatMap(\.parameterShapes).count
        // Steps 0, 1, 3 and 4 of the tests' sequence (2 is the short batch, another plan):
        // the first sets the key and the optimizer (the start stays 0); the second the start,
        // the key and firstStep going to 0; the third the learning rate too; the fourth only
        // the start and the key.
        #expect(trainGraph.updatesPerReplay == [1 + parameters, 2 + parameters, 2 + parameters, 2])
    }

    /// What the driver reads: the struct must be C's CUDA_KERNEL_NODE_PARAMS_v1.
    @Test func kernelNodeParamsHaveCsLayout() {
        #expect(CUDAKernelNodeParams.hasTheCLayout)
        #expect(MemoryLayout<CUDAKernelNodeParams>.size == 56 && MemoryLayout<CUDAKernelNodeParams>.alignment == 8)
    }

    /// The steps every path runs: LeNet-BN (BatchNorm, dropout) with momentum, a short
    /// batch, a learning rate change, keys with high halves, evaluation, inference, a staged
    /// step and a split attached anew.
    static func runSteps(on runtime: RecordingRuntime, warn: @escaping (String) -> Void) throws {
        let definition = ModelDefinition.lenet(.lenetBN)
        let program = try runtime.compile(KernelSources.program, kernels: KernelSources.kernelNames)
        let network = try GPUNetwork(definition, maxBatch: 32, trainable: true, program: program)
        network.warn = warn
        var generator = RandomGenerator(seed: 3)
        let store = ParameterStore(definition: definition)
        store.initialize(definition: definition, generator: &generator)
        func split(_ count: Int) throws -> DataSplit {
            try DataSplit(name: "split", pixels: (0..<count * 784).map { _ in UInt8(generator.nextIndex(below: 256)) },
                          labels: (0..<count).map { _ in UInt8(generator.nextIndex(below: 10)) })
        }
        network.load(store)
        network.attach(try split(80), as: .train)
        network.attach(try split(40), as: .test)
        network.optimizer = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
        network.setOrder((0..<80).map { Int32(($0 * 37) % 80) }, of: .train)
        network.trainStep(0..<32, key: StepKey(seed: 99, step: 0))
        network.trainStep(32..<64, key: StepKey(seed: 99, step: 1))
        network.trainStep(64..<80, key: StepKey(seed: 99, step: 2))
        network.optimizer.learningRate = 0.01
        network.trainStep(0..<32, key: StepKey(seed: 99, step: 3))
        network.trainStep(32..<64, key: StepKey(seed: 0x1234_5678_9abc_def0, step: 1 << 33))
        network.evaluate(0..<32, of: .test, logits: nil)
        network.evaluate(32..<40, of: .test, logits: nil)
        var logits = [Float](repeating: 0, count: 30)
        network.infer((0..<3 * 784).map { Float($0 % 7) }, count: 3, logits: &logits)
        network.trainStep(images: [Float](repeating: 0.5, count: 4 * 784), labels: [1, 2, 3, 4],
                          keepMasks: [[Float](repeating: 1, count: 4 * 120)])
        network.attach(try split(64), as: .train)
        network.trainStep(0..<32, key: StepKey(seed: 7, step: 0))
        // Evaluation again on an existing plan: its gather is the only change.
        network.evaluate(0..<32, of: .test, logits: nil)
    }
}

/// Where two launch lists first differ, in one line; nil when they are the same.
private func firstDifference(_ a: [RecordedLaunch], _ b: [RecordedLaunch]) -> String? {
    if let index = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) {
        return "launch \(index): \(a[index]) instead of \(b[index])"
    }
    return a.count == b.count ? nil : "\(a.count) launches instead of \(b.count)"
}

/// One launch as a runtime received it, buffers by handle.
struct RecordedLaunch: Equatable, CustomStringConvertible {
    var kernel: String
    var arguments: [RecordedArgument]
    var items: Int
    var groupSize: Int

    init(_ launch: GPULaunch) {
        kernel = launch.kernel.name
        arguments = launch.arguments.map(RecordedArgument.init)
        items = launch.items
        groupSize = launch.groupSize
    }

    /// `gather_batch(b54, i0, f0.5, u7) 25088/64`: buffers by handle, then items/group size.
    var description: String {
        let values = arguments.map { argument in
            switch argument {
            case .buffer(let handle): "b\(handle)"
            case .int(let value): "i\(value)"
            case .uint(let value): "u\(value)"
            case .float(let value): "f\(value)"
            }
        }
        return "\(kernel)(\(values.joined(separator: ", "))) \(items)/\(groupSize)"
    }
}

enum RecordedArgument: Equatable {
    case buffer(UInt64), int(Int32), uint(UInt32), float(Float)

    init(_ argument: GPUArgument) {
        switch argument {
        case .buffer(let buffer): self = .buffer(buffer.handle)
        case .int(let value): self = .int(value)
        case .uint(let value): self = .uint(value)
        case .float(let value): self = .float(value)
        }
    }
}

/// A runtime without a device: buffers are handle numbers (1, 2, 3... in the order
/// allocated, so that two networks built alike have the same ones), copies do nothing
/// (reads give zeros), and launches are recorded, replayed graphs' included.
final class RecordingRuntime: GPURuntime, @unchecked Sendable {
    enum Graphs {
        /// The protocol's default: launch by launch.
        case launchByLaunch
        /// `RecordingGraph`s.
        case recording
        /// `makeLaunchGraph` throws, as a driver without graphs would.
        case failing
    }

    let device = GPUDeviceInfo(runtime: .cuda, index: 0, name: "recording", memoryBytes: 0, runtimeVersion: "",
                               driverVersion: "", details: "")
    let graphMode: Graphs
    private(set) var launches: [RecordedLaunch] = []
    /// Each `RecordingGraph`'s replays, in the order the graphs were made (the logs, not
    /// the graphs: a graph holds its runtime, so holding the graphs here would be a cycle).
    private(set) var graphs: [ReplayLog] = []
    private var nextHandle: UInt64 = 1

    init(graphs: Graphs) { graphMode = graphs }

    func compile(_ source: String, kernels: [String]) throws -> GPUProgram {
        GPUProgram(runtime: self, kernels: kernels.enumerated().map { GPUKernel(name: $1, handle: OpaquePointer(bitPattern: $0 + 1)!) })
    }

    func allocate(bytes: Int) throws -> GPUBuffer {
        defer { nextHandle += 1 }
        return GPUBuffer(bytes: bytes, handle: nextHandle, runtime: self)
    }

    func copy(_ host: UnsafeRawPointer, to buffer: GPUBuffer, offset: Int, bytes: Int) throws {}

    func copy(_ buffer: GPUBuffer, offset: Int, to host: UnsafeMutableRawPointer, bytes: Int) throws {
        host.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    func launch(_ kernel: GPUKernel, _ arguments: [GPUArgument], items: Int, groupSize: Int) throws {
        guard items > 0 else { return }  // as the real runtimes
        record(GPULaunch(kernel: kernel, arguments: arguments, items: items, groupSize: groupSize))
    }

    func record(_ launch: GPULaunch) { launches.append(RecordedLaunch(launch)) }

    func makeLaunchGraph(_ launches: [GPULaunch]) throws -> GPULaunchGraph {
        switch graphMode {
        case .launchByLaunch: return GPULaunchGraph(runtime: self, launches: launches)
        case .failing: throw GPUError("no graphs here")
        case .recording:
            let graph = RecordingGraph(recorder: self, launches: launches)
            graphs.append(graph.log)
            return graph
        }
    }

    func synchronize() throws {}
    func free(_ buffer: GPUBuffer) {}
}

/// A graph as a driver holds one: its nodes are the launches as they were when it was
/// made, and a replay first updates the nodes of `changedLaunches` only, then records
/// every node. A change the graph was not told about would replay stale arguments.
final class RecordingGraph: GPULaunchGraph {
    private let recorder: RecordingRuntime
    private var nodes: [GPULaunch]
    let log = ReplayLog()

    init(recorder: RecordingRuntime, launches: [GPULaunch]) {
        self.recorder = recorder
        nodes = launches
        super.init(runtime: recorder, launches: launches)
    }

    override func replay() throws {
        log.updatesPerReplay.append(changedLaunches.count)
        for index in changedLaunches { nodes[index] = launches[index] }
        forgetChanges()
        for node in nodes where node.items > 0 { recorder.record(node) }
    }
}

/// What a `RecordingGraph` did.
final class ReplayLog {
    /// How many nodes each replay updated.
    var updatesPerReplay: [Int] = []
}
