import Foundation

/// The CUDA driver API functions lenet calls, looked up in `libcuda.so.1` (installed with
/// NVIDIA's driver). `CUresult` is an Int32 (0 is success); handles are opaque pointers;
/// a device pointer (`CUdeviceptr`) is a UInt64.
private struct CUDADriverAPI {
    typealias Handle = OpaquePointer
    typealias Result = Int32

    let initialize: @convention(c) (UInt32) -> Result
    let driverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let deviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let deviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Result
    let deviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Result
    let deviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Result
    let deviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Result
    let primaryContextRetain: @convention(c) (UnsafeMutablePointer<Handle?>, Int32) -> Result
    let contextSetCurrent: @convention(c) (Handle?) -> Result
    let moduleLoadData: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeRawPointer) -> Result
    let moduleGetFunction: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?, UnsafePointer<CChar>) -> Result
    let memAlloc: @convention(c) (UnsafeMutablePointer<UInt64>, Int) -> Result
    let memFree: @convention(c) (UInt64) -> Result
    let memsetD8: @convention(c) (UInt64, UInt8, Int) -> Result
    let memcpyHtoD: @convention(c) (UInt64, UnsafeRawPointer, Int) -> Result
    let memcpyDtoH: @convention(c) (UnsafeMutableRawPointer, UInt64, Int) -> Result
    let launchKernel: @convention(c) (Handle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, Handle?,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Result
    let contextSynchronize: @convention(c) () -> Result
    let getErrorName: @convention(c) (Result, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Result
    /// CUDA graphs, or why this driver has none: looked up apart, so that a driver without
    /// them still runs lenet (launch by launch).
    let graphs: Swift.Result<CUDAGraphAPI, GPUError>

    static let computeCapabilityMajor: Int32 = 75, computeCapabilityMinor: Int32 = 76

    init(_ library: DynamicLibrary) throws {
        initialize = try library.function("cuInit")
        driverGetVersion = try library.function("cuDriverGetVersion")
        deviceGetCount = try library.function("cuDeviceGetCount")
        deviceGet = try library.function("cuDeviceGet")
        deviceGetName = try library.function("cuDeviceGetName")
        deviceTotalMem = try library.function("cuDeviceTotalMem_v2")
        deviceGetAttribute = try library.function("cuDeviceGetAttribute")
        primaryContextRetain = try library.function("cuDevicePrimaryCtxRetain")
        contextSetCurrent = try library.function("cuCtxSetCurrent")
        moduleLoadData = try library.function("cuModuleLoadData")
        moduleGetFunction = try library.function("cuModuleGetFunction")
        memAlloc = try library.function("cuMemAlloc_v2")
        memFree = try library.function("cuMemFree_v2")
        memsetD8 = try library.function("cuMemsetD8_v2")
        memcpyHtoD = try library.function("cuMemcpyHtoD_v2")
        memcpyDtoH = try library.function("cuMemcpyDtoH_v2")
        launchKernel = try library.function("cuLaunchKernel")
        contextSynchronize = try library.function("cuCtxSynchronize")
        getErrorName = try library.function("cuGetErrorName")
        graphs = Swift.Result { try CUDAGraphAPI(library) }.mapError { $0 as? GPUError ?? GPUError("\($0)") }
    }

    func name(of result: Result) -> String {
        var text: UnsafePointer<CChar>?
        guard getErrorName(result, &text) == 0, let text else { return "CUDA error \(result)" }
        return String(cString: text)
    }
}

/// `CUDA_KERNEL_NODE_PARAMS_v1` of cuda.h, field for field: what a kernel node of a graph
/// launches. CUDA 12's cuda.h names the larger `_v2` struct (two more fields, `kern` and
/// `ctx`) `CUDA_KERNEL_NODE_PARAMS` and #defines `cuGraphAddKernelNode` and
/// `cuGraphExecKernelNodeSetParams` to their `_v2` symbols; the plain symbols, which lenet
/// looks up, take this `_v1` struct: the driver's ABI since CUDA 10, still declared for it
/// in cuda.h 13.1 (checked against that header, not against a driver).
/// 56 bytes on 64-bit Linux: `hasTheCLayout` checks that Swift lays it out as C does.
struct CUDAKernelNodeParams {
    var function: OpaquePointer?
    var gridDimX: UInt32 = 1, gridDimY: UInt32 = 1, gridDimZ: UInt32 = 1
    var blockDimX: UInt32 = 1, blockDimY: UInt32 = 1, blockDimZ: UInt32 = 1
    var sharedMemBytes: UInt32 = 0
    /// The `void **kernelParams` array: a pointer to each argument's value.
    var kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    var extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>? = nil

    /// C's offsets: `func` 0, the seven unsigned ints 8 to 32, `kernelParams` 40 (after 4
    /// bytes of padding), `extra` 48, 56 in all.
    static var hasTheCLayout: Bool {
        MemoryLayout<Self>.size == 56 && MemoryLayout<Self>.offset(of: \Self.gridDimX) == 8
            && MemoryLayout<Self>.offset(of: \Self.sharedMemBytes) == 32 && MemoryLayout<Self>.offset(of: \Self.kernelParams) == 40
            && MemoryLayout<Self>.offset(of: \Self.extra) == 48
    }
}

/// The CUDA graph functions lenet calls (drivers of CUDA 11.4 and later), by their exported
/// symbol names, which are not always the names cuda.h's macros give:
/// - `cuGraphAddKernelNode`, `cuGraphExecKernelNodeSetParams`: the `_v1` struct (see
///   `CUDAKernelNodeParams`), not cuda.h 12's `_v2` ones.
/// - `cuGraphInstantiateWithFlags(CUgraphExec *, CUgraph, unsigned long long flags)`: what
///   cuda.h 12 #defines `cuGraphInstantiate` to; the plain `cuGraphInstantiate` symbol is the
///   older one with an error node and a log buffer.
/// - `cuGraphLaunch`: the plain symbol treats stream 0 as the legacy default stream, as
///   `cuLaunchKernel` does (the `_ptsz` one would take it as the per-thread stream).
struct CUDAGraphAPI {
    typealias Handle = OpaquePointer
    typealias Result = Int32

    let create: @convention(c) (UnsafeMutablePointer<Handle?>, UInt32) -> Result
    /// (node out, graph, dependencies, dependency count, `CUDAKernelNodeParams` pointer).
    let addKernelNode: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?, UnsafePointer<Handle?>?, Int,
                                       UnsafeRawPointer) -> Result
    let instantiateWithFlags: @convention(c) (UnsafeMutablePointer<Handle?>, Handle?, UInt64) -> Result
    /// (executable graph, node of the graph it was made from, `CUDAKernelNodeParams` pointer).
    let execKernelNodeSetParams: @convention(c) (Handle?, Handle?, UnsafeRawPointer) -> Result
    let launch: @convention(c) (Handle?, Handle?) -> Result
    let execDestroy: @convention(c) (Handle?) -> Result
    let destroy: @convention(c) (Handle?) -> Result

    init(_ library: DynamicLibrary) throws {
        guard CUDAKernelNodeParams.hasTheCLayout else {
            throw GPUError("CUDA graphs are off: Swift lays out CUDA_KERNEL_NODE_PARAMS unlike C on this platform")
        }
        create = try library.function("cuGraphCreate")
        addKernelNode = try library.function("cuGraphAddKernelNode")
        instantiateWithFlags = try library.function("cuGraphInstantiateWithFlags")
        execKernelNodeSetParams = try library.function("cuGraphExecKernelNodeSetParams")
        launch = try library.function("cuGraphLaunch")
        execDestroy = try library.function("cuGraphExecDestroy")
        destroy = try library.function("cuGraphDestroy")
    }
}

/// Writes each argument's value into its 8-byte slot of `values`, and a pointer to that
/// slot into `pointers`: the `void **kernelParams` array the driver reads (it copies the
/// values during the call, so the slots may be reused right after).
private func storeKernelParameters(_ arguments: [GPUArgument], values: UnsafeMutablePointer<UInt64>,
                                   pointers: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
    for (index, argument) in arguments.enumerated() {
        let slot = UnsafeMutableRawPointer(values + index)
        switch argument {
        case .buffer(let buffer): slot.storeBytes(of: buffer.handle, as: UInt64.self)
        case .int(let value): slot.storeBytes(of: value, as: Int32.self)
        case .uint(let value): slot.storeBytes(of: value, as: UInt32.self)
        case .float(let value): slot.storeBytes(of: value, as: Float.self)
        }
        pointers[index] = slot
    }
}

/// NVRTC, CUDA's run-time compiler (`libnvrtc.so.12`): CUDA C source to PTX, which the
/// driver compiles for the GPU at hand.
private struct NVRTCAPI {
    typealias Handle = OpaquePointer
    let version: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    let createProgram: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
                                       UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    let compileProgram: @convention(c) (Handle?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    let getProgramLogSize: @convention(c) (Handle?, UnsafeMutablePointer<Int>) -> Int32
    let getProgramLog: @convention(c) (Handle?, UnsafeMutablePointer<CChar>) -> Int32
    let getPTXSize: @convention(c) (Handle?, UnsafeMutablePointer<Int>) -> Int32
    let getPTX: @convention(c) (Handle?, UnsafeMutablePointer<CChar>) -> Int32
    let destroyProgram: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32

    init(_ library: DynamicLibrary) throws {
        version = try library.function("nvrtcVersion")
        createProgram = try library.function("nvrtcCreateProgram")
        compileProgram = try library.function("nvrtcCompileProgram")
        getProgramLogSize = try library.function("nvrtcGetProgramLogSize")
        getProgramLog = try library.function("nvrtcGetProgramLog")
        getPTXSize = try library.function("nvrtcGetPTXSize")
        getPTX = try library.function("nvrtcGetPTX")
        destroyProgram = try library.function("nvrtcDestroyProgram")
    }

    /// The library names tried, newest CUDA 12 first; LENET_NVRTC names a file to use instead.
    static var libraryNames: [String] {
        if let path = libraryFromEnvironment("LENET_NVRTC") { return [path] }
        return ["libnvrtc.so.12", "libnvrtc.so"]
    }

    /// `source` as PTX for `architecture` (e.g. "compute_80").
    func ptx(from source: String, architecture: String) throws -> String {
        var program: Handle?
        var status = source.withCString { createProgram(&program, $0, "lenet_kernels.cu", 0, nil, nil) }
        guard status == 0, program != nil else { throw GPUError("NVRTC could not take the program (status \(status))") }
        defer { _ = destroyProgram(&program) }
        // --fmad=false: no fused multiply-adds the source did not ask for, as OpenCL and the CPU.
        let options = ["--gpu-architecture=\(architecture)", "--fmad=false", "--std=c++11"]
        status = withCStrings(options) { compileProgram(program, Int32(options.count), $0) }
        guard status == 0 else {
            var size = 0
            _ = getProgramLogSize(program, &size)
            var log = [CChar](repeating: 0, count: max(1, size))
            _ = getProgramLog(program, &log)
            throw GPUError("NVRTC could not compile the kernels: \(stringFromCBuffer(log))")
        }
        var size = 0
        _ = getPTXSize(program, &size)
        var text = [CChar](repeating: 0, count: max(1, size))
        _ = getPTX(program, &text)
        return stringFromCBuffer(text)
    }
}

/// Calls `body` with `strings` as an array of C strings that lives for the call.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { Foundation.free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// One NVIDIA GPU behind `GPURuntime`, through the CUDA driver API: its primary context
/// and the default stream. Kernels come from NVRTC at run time.
///
/// Copies, launches and graph launches all go to the legacy default stream (stream 0), so
/// they run in the order made. A graph cannot be captured from that stream, but it can be
/// launched into it: lenet builds its graphs node by node instead (`makeLaunchGraph`).
final class CUDARuntime: GPURuntime, @unchecked Sendable {
    /// `libcuda.so.1`, or the file LENET_CUDA_LIBRARY names (tests name a missing one).
    static var defaultLibrary: String { libraryFromEnvironment("LENET_CUDA_LIBRARY") ?? "libcuda.so.1" }
    private static let hint = "no NVIDIA driver is installed"

    let device: GPUDeviceInfo
    private let api: CUDADriverAPI
    private let context: OpaquePointer
    /// The device's compute capability, e.g. 90 for Hopper: what NVRTC compiles for.
    let computeCapability: Int
    /// Arguments are passed to the driver as pointers to their values; one launch at a time.
    private let launchLock = NSLock()
    /// False when LENET_CUDA_GRAPHS=0: plans then replay launch by launch (to compare both).
    let usesGraphs = ProcessInfo.processInfo.environment["LENET_CUDA_GRAPHS"] != "0"

    init(deviceIndex: Int = 0, library: String = CUDARuntime.defaultLibrary) throws {
        let api = try Self.openDriver(library)
        let devices = try Self.describeAll(api)
        guard devices.indices.contains(deviceIndex) else {
            throw GPUError(devices.isEmpty ? "CUDA is installed (\(library)) but reports no GPU"
                                           : "CUDA device \(deviceIndex) does not exist: \(devices.count) found")
        }
        var handle: Int32 = 0, context: OpaquePointer?
        try Self.check(api, api.deviceGet(&handle, Int32(deviceIndex)), "find device \(deviceIndex)")
        try Self.check(api, api.primaryContextRetain(&context, handle), "create a context")
        try Self.check(api, api.contextSetCurrent(context), "make its context current")
        var major: Int32 = 0, minor: Int32 = 0
        _ = api.deviceGetAttribute(&major, CUDADriverAPI.computeCapabilityMajor, handle)
        _ = api.deviceGetAttribute(&minor, CUDADriverAPI.computeCapabilityMinor, handle)
        self.api = api
        self.context = context!
        computeCapability = Int(major * 10 + minor)
        device = devices[deviceIndex]
    }

    /// Every CUDA device.
    static func devices(library: String = defaultLibrary) throws -> [GPUDeviceInfo] {
        try describeAll(openDriver(library))
    }

    private static func openDriver(_ library: String) throws -> CUDADriverAPI {
        let api = try CUDADriverAPI(DynamicLibrary([library], purpose: "CUDA", hint: hint))
        let status = api.initialize(0)
        // CUDA_ERROR_NO_DEVICE (100): a driver without a GPU; devices() then lists none.
        guard status == 0 || status == 100 else {
            throw GPUError("CUDA is installed (\(library)) but did not start: \(api.name(of: status))")
        }
        return api
    }

    private static func describeAll(_ api: CUDADriverAPI) throws -> [GPUDeviceInfo] {
        var count: Int32 = 0, version: Int32 = 0
        guard api.deviceGetCount(&count) == 0 else { return [] }
        _ = api.driverGetVersion(&version)
        let driver = "CUDA \(version / 1000).\(version % 1000 / 10)"
        return (0..<Int(count)).map { index in
            var handle: Int32 = 0, memory = 0, major: Int32 = 0, minor: Int32 = 0
            var name = [CChar](repeating: 0, count: 256)
            _ = api.deviceGet(&handle, Int32(index))
            _ = api.deviceGetName(&name, Int32(name.count), handle)
            _ = api.deviceTotalMem(&memory, handle)
            _ = api.deviceGetAttribute(&major, CUDADriverAPI.computeCapabilityMajor, handle)
            _ = api.deviceGetAttribute(&minor, CUDADriverAPI.computeCapabilityMinor, handle)
            return GPUDeviceInfo(runtime: .cuda, index: index, name: stringFromCBuffer(name), memoryBytes: UInt64(memory),
                                 runtimeVersion: driver, driverVersion: driver,
                                 details: "compute capability \(major).\(minor)")
        }
    }

    // MARK: GPURuntime

    /// Compiles with NVRTC for this GPU's architecture, then loads the PTX. Without NVRTC
    /// (or with LENET_CUDA_USE_PTX=1), lenet's own program loads from the PTX that
    /// Scripts/gpu/generate_ptx.sh compiled from the same source for compute_80.
    func compile(_ source: String, kernels names: [String]) throws -> GPUProgram {
        let hasPTX = source == KernelSources.program && !KernelSources.ptx.isEmpty
        if hasPTX && ProcessInfo.processInfo.environment["LENET_CUDA_USE_PTX"] == "1" {
            return try load(ptx: KernelSources.ptx, kernels: names)
        }
        let nvrtc: NVRTCAPI
        do {
            nvrtc = try NVRTCAPI(DynamicLibrary(NVRTCAPI.libraryNames, purpose: "NVRTC (CUDA's run-time compiler)",
                                                hint: "pip install nvidia-cuda-nvrtc-cu12 and set LENET_NVRTC to its libnvrtc.so.12"))
        } catch {
            guard hasPTX else { throw error }
            return try load(ptx: KernelSources.ptx, kernels: names)
        }
        // PTX for the device's own architecture (at most compute_90: what NVRTC 12 surely knows).
        let ptx = try nvrtc.ptx(from: source, architecture: "compute_\(min(computeCapability, 90))")
        return try load(ptx: ptx, kernels: names)
    }

    /// Loads PTX text (the driver compiles it for the GPU) and finds each kernel in it.
    func load(ptx: String, kernels names: [String]) throws -> GPUProgram {
        try makeCurrent()
        var module: OpaquePointer?
        try ptx.withCString { try check(api.moduleLoadData(&module, $0), "load the kernels' PTX") }
        let kernels = try names.map { name in
            var function: OpaquePointer?
            try check(api.moduleGetFunction(&function, module, name), "find kernel \(name)")
            return GPUKernel(name: name, handle: function!)
        }
        return GPUProgram(runtime: self, kernels: kernels)
    }

    func allocate(bytes: Int) throws -> GPUBuffer {
        try makeCurrent()
        var pointer: UInt64 = 0
        try check(api.memAlloc(&pointer, max(1, bytes)), "allocate \(bytes) bytes")
        try check(api.memsetD8(pointer, 0, max(1, bytes)), "zero a buffer")
        return GPUBuffer(bytes: bytes, handle: pointer, runtime: self)
    }

    func copy(_ host: UnsafeRawPointer, to buffer: GPUBuffer, offset: Int, bytes: Int) throws {
        precondition(offset >= 0 && offset + bytes <= buffer.bytes, "copy past the end of a device buffer")
        try makeCurrent()
        try check(api.memcpyHtoD(buffer.handle + UInt64(offset), host, bytes), "copy to the device")
    }

    func copy(_ buffer: GPUBuffer, offset: Int, to host: UnsafeMutableRawPointer, bytes: Int) throws {
        precondition(offset >= 0 && offset + bytes <= buffer.bytes, "copy past the end of a device buffer")
        try makeCurrent()
        try check(api.memcpyDtoH(host, buffer.handle + UInt64(offset), bytes), "copy from the device")
    }

    func launch(_ kernel: GPUKernel, _ arguments: [GPUArgument], items: Int, groupSize: Int) throws {
        guard items > 0 else { return }
        launchLock.lock()
        defer { launchLock.unlock() }
        try makeCurrent()
        // The driver takes an array of pointers, one to each argument's value: 8 bytes a slot,
        // on the stack (no allocation per launch).
        try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(1, arguments.count)) { values in
            try withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: max(1, arguments.count)) { pointers in
                storeKernelParameters(arguments, values: values.baseAddress!, pointers: pointers.baseAddress!)
                let blocks = UInt32((items + groupSize - 1) / groupSize)
                try check(api.launchKernel(kernel.handle, blocks, 1, 1, UInt32(groupSize), 1, 1, 0, nil,
                                           pointers.baseAddress, nil), "launch \(kernel.name)")
            }
        }
    }

    /// A CUDA graph of `launches`, built node by node, each node depending on the one
    /// before (the same order as launching them one by one on a stream), then instantiated.
    /// With LENET_CUDA_GRAPHS=0, the plain launch-by-launch replay instead.
    ///
    /// This path could only be compile-checked where it was written (no NVIDIA GPU there).
    func makeLaunchGraph(_ launches: [GPULaunch]) throws -> GPULaunchGraph {
        guard usesGraphs else { return GPULaunchGraph(runtime: self, launches: launches) }
        let graphs = try api.graphs.get()
        try makeCurrent()
        let parameters = KernelParameterSlots(argumentCounts: launches.map(\.arguments.count))
        var graph: OpaquePointer?
        try check(graphs.create(&graph, 0), "create a graph")
        do {
            var nodes: [OpaquePointer?] = []
            var previous: OpaquePointer?
            for (index, launch) in launches.enumerated() {
                // As `launch`, a launch of no items launches nothing: it has no node.
                guard launch.items > 0 else {
                    nodes.append(nil)
                    continue
                }
                var params = parameters.nodeParams(for: launch, index)
                var node: OpaquePointer?
                let status = withUnsafePointer(to: previous) { dependency in
                    graphs.addKernelNode(&node, graph, previous == nil ? nil : dependency, previous == nil ? 0 : 1, &params)
                }
                try check(status, "add \(launch.kernel.name) to a graph")
                nodes.append(node)
                previous = node
            }
            var executable: OpaquePointer?
            try check(graphs.instantiateWithFlags(&executable, graph, 0), "instantiate a graph of \(launches.count) launches")
            return CUDALaunchGraph(runtime: self, launches: launches, api: graphs, graph: graph!, executable: executable!,
                                   nodes: nodes, parameters: parameters)
        } catch {
            _ = graphs.destroy(graph)
            throw error
        }
    }

    func synchronize() throws {
        try makeCurrent()
        try check(api.contextSynchronize(), "finish its work")
    }

    func free(_ buffer: GPUBuffer) { _ = api.memFree(buffer.handle) }

    // MARK: Helpers

    /// The driver's current context is per thread: set it on whichever thread calls.
    fileprivate func makeCurrent() throws { try check(api.contextSetCurrent(context), "make its context current") }

    /// `what` is only built on failure: no string is made per launch.
    fileprivate func check(_ result: Int32, _ what: @autoclosure () -> String) throws { try Self.check(api, result, what()) }

    private static func check(_ api: CUDADriverAPI, _ result: Int32, _ what: @autoclosure () -> String) throws {
        guard result == 0 else { throw GPUError("CUDA could not \(what()) (\(api.name(of: result)))") }
    }
}

/// The `kernelParams` arrays of a graph's nodes: per launch, an 8-byte value slot per
/// argument and a pointer to each, allocated once with the graph and rewritten in place
/// when a node's arguments change.
private final class KernelParameterSlots {
    private let values: UnsafeMutablePointer<UInt64>
    private let pointers: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Where each launch's slots start.
    private let firstSlot: [Int]

    init(argumentCounts: [Int]) {
        var starts: [Int] = [], total = 0
        for count in argumentCounts {
            starts.append(total)
            total += count
        }
        firstSlot = starts
        values = .allocate(capacity: max(1, total))
        pointers = .allocate(capacity: max(1, total))
    }

    deinit {
        values.deallocate()
        pointers.deallocate()
    }

    /// The node parameters of launch `index` with its current arguments (written to its slots).
    func nodeParams(for launch: GPULaunch, _ index: Int) -> CUDAKernelNodeParams {
        let start = firstSlot[index]
        storeKernelParameters(launch.arguments, values: values + start, pointers: pointers + start)
        return CUDAKernelNodeParams(function: launch.kernel.handle,
                                    gridDimX: UInt32((launch.items + launch.groupSize - 1) / launch.groupSize),
                                    blockDimX: UInt32(launch.groupSize), kernelParams: pointers + start)
    }
}

/// A step's launches as an instantiated CUDA graph: a replay hands the driver the nodes
/// whose arguments changed (`cuGraphExecKernelNodeSetParams`, which affects later launches
/// of the graph only, not one already queued) and launches the whole graph on the default
/// stream with one call. Compile-checked only where it was written (no NVIDIA GPU there).
private final class CUDALaunchGraph: GPULaunchGraph {
    private let cuda: CUDARuntime
    private let api: CUDAGraphAPI
    /// The graph as built: updating a node of `executable` names the node of this graph.
    private let graph: OpaquePointer
    private let executable: OpaquePointer
    /// Each launch's node (nil for a launch of no items, which has none).
    private let nodes: [OpaquePointer?]
    private let parameters: KernelParameterSlots

    init(runtime: CUDARuntime, launches: [GPULaunch], api: CUDAGraphAPI, graph: OpaquePointer, executable: OpaquePointer,
         nodes: [OpaquePointer?], parameters: KernelParameterSlots) {
        cuda = runtime
        self.api = api
        self.graph = graph
        self.executable = executable
        self.nodes = nodes
        self.parameters = parameters
        super.init(runtime: runtime, launches: launches)
    }

    /// An executable graph still running is freed by the driver once it finishes.
    deinit {
        _ = api.execDestroy(executable)
        _ = api.destroy(graph)
    }

    override func replay() throws {
        try cuda.makeCurrent()
        for index in changedLaunches {
            guard let node = nodes[index] else { continue }
            var params = parameters.nodeParams(for: launches[index], index)
            try cuda.check(api.execKernelNodeSetParams(executable, node, &params), "update \(launches[index].kernel.name) in a graph")
        }
        forgetChanges()
        try cuda.check(api.launch(executable, nil), "launch a graph")
    }
}
