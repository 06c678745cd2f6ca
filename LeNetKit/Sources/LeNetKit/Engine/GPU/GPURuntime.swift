import Foundation

/// The GPU APIs lenet can use, each opened at run time (the build needs neither).
public enum GPURuntimeKind: String, Sendable, CaseIterable {
    /// OpenCL through the ICD loader `libOpenCL.so.1`: any vendor's GPU, or PoCL on the CPU.
    case opencl
    /// The CUDA driver API through `libcuda.so.1` (NVIDIA's driver), kernels compiled by NVRTC.
    case cuda

    /// The name users type and read (`--device opencl`).
    public var displayName: String { self == .opencl ? "OpenCL" : "CUDA" }
}

/// What a runtime says about its device, for `lenet devices` and run reports.
public struct GPUDeviceInfo: Sendable, Equatable {
    public var runtime: GPURuntimeKind
    /// The device's index among those of its runtime.
    public var index: Int
    public var name: String
    /// Device memory in bytes.
    public var memoryBytes: UInt64
    /// The API's version as the device reports it ("OpenCL 3.0 PoCL 3.1", "CUDA 12.4").
    public var runtimeVersion: String
    /// The driver's own version string.
    public var driverVersion: String
    /// Free text: the device type, compute capability.
    public var details: String

    /// One line: `opencl 0: NAME (details), 16.0 GiB, RUNTIME, driver DRIVER`.
    public var line: String {
        let memory = String(format: "%.1f GiB", Double(memoryBytes) / 1_073_741_824)
        let detail = details.isEmpty ? "" : " (\(details))"
        return "\(runtime.rawValue) \(index): \(name)\(detail), \(memory), \(runtimeVersion), driver \(driverVersion)"
    }
}

/// A GPU failure in one line that names what is missing or what failed.
public struct GPUError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description.oneLineGPUMessage }
}

extension String {
    /// Newlines (from driver logs) folded into "; " so that every error stays one line.
    fileprivate var oneLineGPUMessage: String {
        split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}

/// One argument of a kernel launch, in the order of the kernel's parameters.
enum GPUArgument {
    case buffer(GPUBuffer)
    case int(Int32)
    case uint(UInt32)
    case float(Float)

    /// An `int` argument from a Swift Int (sizes, indices).
    static func int(_ value: Int) -> GPUArgument { .int(Int32(value)) }
}

extension GPUArgument: Equatable {
    /// The same buffer (not equal contents), or the same number bit for bit.
    static func == (left: GPUArgument, right: GPUArgument) -> Bool {
        switch (left, right) {
        case (.buffer(let a), .buffer(let b)): a === b
        case (.int(let a), .int(let b)): a == b
        case (.uint(let a), .uint(let b)): a == b
        case (.float(let a), .float(let b)): a.bitPattern == b.bitPattern
        default: false
        }
    }
}

/// One kernel launch as `GPURuntime.launch` takes it, kept to be replayed.
struct GPULaunch {
    var kernel: GPUKernel
    var arguments: [GPUArgument]
    var items: Int
    var groupSize: Int
}

/// A fixed list of launches, made once and replayed many times, with a few arguments
/// changed between replays: a training step is the same ~40 launches every time, with a
/// new batch start, dropout key or learning rate.
///
/// This class replays the launches one by one through `GPURuntime.launch`: what OpenCL
/// does (it has no graphs), and CUDA when LENET_CUDA_GRAPHS=0. A runtime with graphs
/// subclasses it (CUDA's `CUDALaunchGraph`) to send the whole list with one driver call,
/// after handing the driver only the launches listed in `changedLaunches`.
class GPULaunchGraph {
    let runtime: any GPURuntime
    /// The launches with their current arguments.
    private(set) var launches: [GPULaunch]
    /// The launches whose arguments changed since the last replay, each once.
    private(set) var changedLaunches: [Int] = []
    private var isChanged: [Bool]

    init(runtime: any GPURuntime, launches: [GPULaunch]) {
        self.runtime = runtime
        self.launches = launches
        isChanged = Array(repeating: false, count: launches.count)
        // Room for every launch up front: marking changes never allocates.
        changedLaunches.reserveCapacity(launches.count)
    }

    /// Sets argument `position` of launch `index` for this replay and the next ones. An
    /// equal value is no change: a driver is then not asked to update anything.
    final func setArgument(_ argument: GPUArgument, at position: Int, ofLaunch index: Int) {
        guard launches[index].arguments[position] != argument else { return }
        launches[index].arguments[position] = argument
        if !isChanged[index] {
            isChanged[index] = true
            changedLaunches.append(index)
        }
    }

    /// Runs every launch in order, on the runtime's queue after the work before it.
    func replay() throws {
        forgetChanges()
        for launch in launches {
            try runtime.launch(launch.kernel, launch.arguments, items: launch.items, groupSize: launch.groupSize)
        }
    }

    /// Empties `changedLaunches` (keeping its room), once a subclass has handed them on.
    final func forgetChanges() {
        for index in changedLaunches { isChanged[index] = false }
        changedLaunches.removeAll(keepingCapacity: true)
    }
}

/// Device memory, freed when the last reference goes. `handle` is the runtime's own
/// (a `cl_mem` or a `CUdeviceptr`), opaque to everything but that runtime.
final class GPUBuffer: @unchecked Sendable {
    let bytes: Int
    let handle: UInt64
    private let runtime: any GPURuntime

    init(bytes: Int, handle: UInt64, runtime: any GPURuntime) {
        self.bytes = bytes
        self.handle = handle
        self.runtime = runtime
    }

    deinit { runtime.free(self) }
}

/// A kernel of a compiled program, found by name once (a `cl_kernel` or a `CUfunction`).
final class GPUKernel: @unchecked Sendable {
    let name: String
    let handle: OpaquePointer
    init(name: String, handle: OpaquePointer) {
        self.name = name
        self.handle = handle
    }
}

/// A compiled program: its kernels by name. It keeps its runtime (and so the device's
/// context) alive.
final class GPUProgram: @unchecked Sendable {
    let runtime: any GPURuntime
    private let kernels: [String: GPUKernel]

    init(runtime: any GPURuntime, kernels: [GPUKernel]) {
        self.runtime = runtime
        self.kernels = Dictionary(uniqueKeysWithValues: kernels.map { ($0.name, $0) })
    }

    func kernel(_ name: String) throws -> GPUKernel {
        guard let kernel = kernels[name] else { throw GPUError("the GPU program has no kernel named \(name)") }
        return kernel
    }

    /// Launches kernel `name` over `items` work items in groups of `groupSize` (see `GPURuntime.launch`).
    func launch(_ name: String, _ arguments: [GPUArgument], items: Int, groupSize: Int = 64) throws {
        try runtime.launch(try kernel(name), arguments, items: items, groupSize: groupSize)
    }
}

/// The few calls lenet needs from a GPU API. An OpenCL and a CUDA implementation sit
/// behind it, each over functions looked up with `dlsym` in a library opened with `dlopen`.
///
/// Calls are in order on one queue (an OpenCL command queue, the CUDA default stream):
/// a launch may return before its kernel runs, and a copy to the host waits for
/// everything before it.
protocol GPURuntime: AnyObject, Sendable {
    var device: GPUDeviceInfo { get }
    /// Compiles `source` (Engine/GPU/Kernels' dialect) and finds each of `kernels` in it.
    /// A compile error throws with the compiler's log.
    func compile(_ source: String, kernels: [String]) throws -> GPUProgram
    /// `bytes` of device memory, zero-filled.
    func allocate(bytes: Int) throws -> GPUBuffer
    /// Copies `bytes` from the host to `buffer` at byte `offset`.
    func copy(_ host: UnsafeRawPointer, to buffer: GPUBuffer, offset: Int, bytes: Int) throws
    /// Copies `bytes` of `buffer` from byte `offset` to the host, once the work before it is done.
    func copy(_ buffer: GPUBuffer, offset: Int, to host: UnsafeMutableRawPointer, bytes: Int) throws
    /// Runs `kernel` with `arguments` over `items` work items (rounded up to a multiple of
    /// `groupSize`, the work-group or thread-block size); the kernel ignores the extra ones.
    func launch(_ kernel: GPUKernel, _ arguments: [GPUArgument], items: Int, groupSize: Int) throws
    /// `launches` made into a graph to replay (see `GPULaunchGraph`). Throws when the
    /// driver cannot make one; the caller may then replay a plain `GPULaunchGraph`.
    /// The default, for runtimes without graphs, is that plain one: launch by launch.
    func makeLaunchGraph(_ launches: [GPULaunch]) throws -> GPULaunchGraph
    /// Waits until every launch and copy so far has finished.
    func synchronize() throws
    /// Releases `buffer`'s memory (called by GPUBuffer's deinit).
    func free(_ buffer: GPUBuffer)
}

extension GPURuntime {
    func makeLaunchGraph(_ launches: [GPULaunch]) throws -> GPULaunchGraph {
        GPULaunchGraph(runtime: self, launches: launches)
    }

    /// A device copy of `values`.
    func upload<T>(_ values: [T]) throws -> GPUBuffer {
        let buffer = try allocate(bytes: max(1, values.count) * MemoryLayout<T>.stride)
        try values.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { try copy(base, to: buffer, offset: 0, bytes: bytes.count) }
        }
        return buffer
    }

    /// The first `count` values of type `T` in `buffer`, as a host array (tests and snapshots, not hot paths).
    func download<T>(_ buffer: GPUBuffer, count: Int, as type: T.Type) throws -> [T] {
        precondition(count * MemoryLayout<T>.stride <= buffer.bytes, "reading past the end of a device buffer")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * MemoryLayout<T>.stride),
                                                   alignment: MemoryLayout<T>.alignment)
        defer { raw.deallocate() }
        try copy(buffer, offset: 0, to: raw, bytes: count * MemoryLayout<T>.stride)
        return Array(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: T.self), count: count))
    }
}

/// Opening a runtime and listing devices, whichever API.
enum GPURuntimes {
    /// The runtime of `kind` on device `index`. Throws one line naming what is missing.
    static func open(_ kind: GPURuntimeKind, device index: Int = 0) throws -> any GPURuntime {
        switch kind {
        case .opencl: try OpenCLRuntime(deviceIndex: index)
        case .cuda: try CUDARuntime(deviceIndex: index)
        }
    }

    /// Every device of `kind`; throws one line when its library or driver is missing.
    static func devices(_ kind: GPURuntimeKind) throws -> [GPUDeviceInfo] {
        switch kind {
        case .opencl: try OpenCLRuntime.devices()
        case .cuda: try CUDARuntime.devices()
        }
    }
}

/// What `lenet devices` shows: each runtime's devices, or why it has none.
public struct GPUDeviceSurvey: Sendable {
    public var devices: [GPUDeviceInfo] = []
    /// Per runtime found wanting, the one-line reason.
    public var missing: [(runtime: GPURuntimeKind, reason: String)] = []

    /// Looks for every runtime's devices now.
    public static func run() -> GPUDeviceSurvey {
        var survey = GPUDeviceSurvey()
        for kind in GPURuntimeKind.allCases {
            do {
                let found = try GPURuntimes.devices(kind)
                if found.isEmpty { survey.missing.append((kind, "\(kind.displayName) reports no device")) }
                survey.devices += found
            } catch {
                survey.missing.append((kind, "\(error)"))
            }
        }
        return survey
    }
}

/// lenet's kernel program on one runtime, compiled the first time it is asked for.
final class CompiledOnce: @unchecked Sendable {
    private let runtime: any GPURuntime
    private let lock = NSLock()
    private var program: GPUProgram?

    init(_ runtime: any GPURuntime) { self.runtime = runtime }

    func get() throws -> GPUProgram {
        try lock.withLock {
            if let program { return program }
            let compiled = try runtime.compile(KernelSources.program, kernels: KernelSources.kernelNames)
            program = compiled
            return compiled
        }
    }
}
