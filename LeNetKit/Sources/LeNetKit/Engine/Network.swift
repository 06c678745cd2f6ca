import Foundation

/// The device boundary: everything training, evaluation, checkpoints and prediction
/// need from a backend, and nothing more. A backend is one folder under Engine/ that
/// implements this protocol (Engine/CPU/ today).
///
/// The backend owns the model's memory: parameters, gradients, optimizer state,
/// activations, and the data splits attached to it. The host sees that memory only
/// through explicit copies (`load` and `snapshot`), so a backend whose memory is not the
/// host's (a GPU) implements the same calls. Step results add up inside the backend and
/// are read when asked, so a device can run many steps without a round trip.
public protocol Network: AnyObject {
    var definition: ModelDefinition { get }
    /// The largest batch the network's buffers hold.
    var maxBatch: Int { get }
    /// Whether the network keeps gradients and optimizer state (false: inference only).
    var isTrainable: Bool { get }

    /// Copies parameters, running statistics, batch counts and optimizer state from the host.
    func load(_ parameters: ParameterStore)
    /// A host copy of everything `load` takes, and the gradients of the last step.
    func snapshot() -> ParameterStore

    /// The optimizer every following step applies. Set it between steps to change the
    /// learning rate (a schedule); its state (SGD's velocity) stays in the backend.
    var optimizer: SGD { get set }

    /// Makes `split` the data of `role`. A backend may copy it into its own memory once;
    /// its order starts as 0, 1, 2, ...
    func attach(_ split: DataSplit, as role: SplitRole)
    /// The order in which batch positions pick images of `role` (a permutation of its indices),
    /// set once per epoch.
    func setOrder(_ order: [Int32], of role: SplitRole)

    /// One training step on the images at positions `batch` of the training order: forward,
    /// loss, backward, optimizer update. Its loss and correct count add to the training totals.
    /// `key` names the step's random draws (dropout), so any backend draws the same ones.
    func trainStep(_ batch: Range<Int>, key: StepKey)
    /// Evaluation-mode forward (running statistics, no dropout) of the images at positions
    /// `batch` of `role`'s order, adding to its totals. Copies the logits [batch.count, classes]
    /// to `logits` when one is given.
    func evaluate(_ batch: Range<Int>, of role: SplitRole, logits: UnsafeMutablePointer<Float>?)
    /// The sums of the steps or evaluations since the last `setTotals`.
    func totals(of role: SplitRole) -> StepTotals
    /// Starts the sums of `role` again from `totals` (zero at an epoch's start; the saved
    /// sums when a run resumes mid-epoch, so that they go on in the same order).
    func setTotals(_ totals: StepTotals, of role: SplitRole)

    /// Logits [count, classes] of `count` host images [count, 1, 28, 28] in [0, 1], in
    /// evaluation mode, written to host memory. `count` is at most `maxBatch`.
    func infer(_ images: UnsafePointer<Float>, count: Int, logits: UnsafeMutablePointer<Float>)
}

/// The two splits a network can hold at once.
public enum SplitRole: Int, Sendable, CaseIterable {
    case train, test
}

/// What a run of steps added up to.
public struct StepTotals: Sendable, Equatable {
    /// Sum of the per-batch mean losses, in step order (the tutorial's loss is this over `batches`).
    public var lossSum: Double
    /// Images whose largest logit was their label's.
    public var correct: Int
    public var batches: Int
    public var images: Int

    public init(lossSum: Double = 0, correct: Int = 0, batches: Int = 0, images: Int = 0) {
        self.lossSum = lossSum
        self.correct = correct
        self.batches = batches
        self.images = images
    }

    public static let zero = StepTotals()

    /// Adds one batch's mean loss and correct count.
    public mutating func add(batchLoss: Float, correct: Int, images: Int) {
        lossSum += Double(batchLoss)
        self.correct += correct
        batches += 1
        self.images += images
    }

    public var meanLoss: Double { batches > 0 ? lossSum / Double(batches) : 0 }
    public var accuracy: Double { images > 0 ? Double(correct) / Double(images) : 0 }
}

/// The key of one training step's random draws: the run's seed and the step's number
/// since the run began. Counter-based generators (`Philox4x32`) turn it and an element's
/// index into the same numbers on any backend, with no stream to share.
public struct StepKey: Sendable, Equatable {
    public var seed: UInt64
    public var step: UInt64
    public init(seed: UInt64, step: UInt64) {
        self.seed = seed
        self.step = step
    }
}

/// Where to compute: a backend and its settings. `makeNetwork` is the one place that
/// names a backend's concrete type.
public struct ComputeDevice: Sendable {
    /// Builds a network for batches of up to `maxBatch`; `trainable: false` builds one
    /// for inference only, without gradients or backward scratch.
    public typealias Factory = @Sendable (_ definition: ModelDefinition, _ maxBatch: Int, _ trainable: Bool) throws -> any Network

    /// The bytes a network built with the same arguments holds, without building it.
    public typealias MemoryPlan = @Sendable (_ definition: ModelDefinition, _ maxBatch: Int, _ trainable: Bool) -> Int

    /// For messages and reports, e.g. "cpu (8 threads)".
    public let name: String
    /// The CPU backend's compute threads; nil for a GPU and for a backend of your own.
    /// `Benchmark` reads it: only the CPU's figures are fractions of the FMA peak.
    public let cpuThreads: Int?
    private let factory: Factory
    private let memoryPlan: MemoryPlan?

    /// A device made of any backend: the way to plug in one of your own. `memoryPlan`,
    /// when given, tells `lenet summary` what the backend's networks hold.
    public init(name: String, memoryPlan: MemoryPlan? = nil, factory: @escaping Factory) {
        self.init(name: name, cpuThreads: nil, memoryPlan: memoryPlan, factory: factory)
    }

    private init(name: String, cpuThreads: Int?, memoryPlan: MemoryPlan?, factory: @escaping Factory) {
        self.name = name
        self.cpuThreads = cpuThreads
        self.memoryPlan = memoryPlan
        self.factory = factory
    }

    /// The CPU backend with `threads` compute threads (the caller's included).
    public static func cpu(threads: Int) -> ComputeDevice {
        ComputeDevice(name: "cpu (\(threads) thread\(threads == 1 ? "" : "s"))", cpuThreads: threads,
                      memoryPlan: CPUNetwork.plannedBytes) { definition, maxBatch, trainable in
            CPUNetwork(definition, maxBatch: maxBatch, threads: threads, trainable: trainable)
        }
    }

    /// The CPU backend on every core the process may use (`defaultThreads` threads).
    public static var allCores: ComputeDevice { .cpu(threads: defaultThreads) }

    /// The GPU backend through OpenCL, on device `index` (GPUs first; see `lenet devices`).
    /// Throws one line naming what is missing when there is no OpenCL library or device.
    public static func opencl(device index: Int = 0) throws -> ComputeDevice { try gpu(.opencl, device: index) }

    /// The GPU backend through the CUDA driver API, on device `index`. Throws one line
    /// naming what is missing when there is no NVIDIA driver or GPU.
    public static func cuda(device index: Int = 0) throws -> ComputeDevice { try gpu(.cuda, device: index) }

    /// Opens the runtime now, so that a missing driver fails before any work starts; the
    /// kernels compile when the first network is made (once per device).
    private static func gpu(_ kind: GPURuntimeKind, device index: Int) throws -> ComputeDevice {
        let runtime = try GPURuntimes.open(kind, device: index)
        let program = CompiledOnce(runtime)
        return ComputeDevice(name: "\(kind.rawValue) (\(runtime.device.name))") { definition, maxBatch, trainable in
            try GPUNetwork(definition, maxBatch: maxBatch, trainable: trainable, program: program.get())
        }
    }

    /// The logical CPUs (hardware threads) this process may run on.
    public static var availableCores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// The compute threads a run uses unless told otherwise: one per physical core this
    /// process may run on (the hardware threads of one core share its vector units, so a
    /// second thread there adds no arithmetic), at most `CPUNetwork.maxUsefulThreads`
    /// (a batch is cut into that many fixed slices; more threads would only wait).
    ///
    /// A VM may present vCPUs as separate cores that in fact share one core's vector units
    /// (this project's 2-vCPU machine does on some days); only a measurement shows it
    /// (`PeakProbe`: all-thread speed-up near 1.0x), and the default does not spend the
    /// probe's second on it: such vCPUs keep one thread each, because a second thread there
    /// was measured not to slow training (+11% training throughput on 2026-11-29, a shared
    /// day), and it doubles the speed on a day they are separate (BENCHMARKS.md, issue 14).
    /// Pass `--threads 1` where a measurement shows otherwise.
    public static var defaultThreads: Int { min(physicalCores, CPUNetwork.maxUsefulThreads) }

    /// Physical cores: Linux's topology files group the hardware threads by core
    /// (`thread_siblings_list`), at most the logical CPUs this process may use; elsewhere,
    /// or when they cannot be read, the logical CPU count.
    public static let physicalCores: Int = {
        #if os(Linux)
        var groups = Set<String>()
        for cpu in 0..<ProcessInfo.processInfo.processorCount {
            let path = "/sys/devices/system/cpu/cpu\(cpu)/topology/thread_siblings_list"
            guard let siblings = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            groups.insert(siblings.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return groups.isEmpty ? availableCores : max(1, min(groups.count, availableCores))
        #else
        return availableCores
        #endif
    }()

    /// The bytes a network of this device holds for batches of up to `maxBatch`: parameters,
    /// gradients, optimizer state, activations and scratch. Nil when the backend does not say.
    public func plannedBytes(_ definition: ModelDefinition, maxBatch: Int, trainable: Bool = true) -> Int? {
        memoryPlan?(definition, maxBatch, trainable)
    }

    public func makeNetwork(_ definition: ModelDefinition, maxBatch: Int, trainable: Bool = true) throws -> any Network {
        try factory(definition, maxBatch, trainable)
    }
}
