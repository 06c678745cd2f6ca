import Foundation

/// The OpenCL functions lenet calls, looked up in the ICD loader `libOpenCL.so.1`, which
/// forwards them to the installed drivers (a GPU vendor's, or PoCL's on the CPU).
/// Handles (`cl_platform_id`, `cl_context`, `cl_mem`, ...) are opaque pointers.
private struct OpenCLAPI {
    typealias Handle = OpaquePointer
    typealias Status = Int32  // cl_int: CL_SUCCESS is 0, errors are negative

    let getPlatformIDs: @convention(c) (UInt32, UnsafeMutablePointer<Handle?>?, UnsafeMutablePointer<UInt32>?) -> Status
    let getPlatformInfo: @convention(c) (Handle?, UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Status
    let getDeviceIDs: @convention(c) (Handle?, UInt64, UInt32, UnsafeMutablePointer<Handle?>?, UnsafeMutablePointer<UInt32>?) -> Status
    let getDeviceInfo: @convention(c) (Handle?, UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Status
    let createContext: @convention(c) (UnsafePointer<Int>?, UInt32, UnsafePointer<Handle?>?, UnsafeRawPointer?,
                                       UnsafeMutableRawPointer?, UnsafeMutablePointer<Status>?) -> Handle?
    let createCommandQueue: @convention(c) (Handle?, Handle?, UInt64, UnsafeMutablePointer<Status>?) -> Handle?
    let createProgramWithSource: @convention(c) (Handle?, UInt32, UnsafePointer<UnsafePointer<CChar>?>?,
                                                 UnsafePointer<Int>?, UnsafeMutablePointer<Status>?) -> Handle?
    let buildProgram: @convention(c) (Handle?, UInt32, UnsafePointer<Handle?>?, UnsafePointer<CChar>?,
                                      UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Status
    let getProgramBuildInfo: @convention(c) (Handle?, Handle?, UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Status
    let createKernel: @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafeMutablePointer<Status>?) -> Handle?
    let setKernelArg: @convention(c) (Handle?, UInt32, Int, UnsafeRawPointer?) -> Status
    let enqueueNDRangeKernel: @convention(c) (Handle?, Handle?, UInt32, UnsafePointer<Int>?, UnsafePointer<Int>?,
                                              UnsafePointer<Int>?, UInt32, UnsafePointer<Handle?>?,
                                              UnsafeMutablePointer<Handle?>?) -> Status
    let createBuffer: @convention(c) (Handle?, UInt64, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Status>?) -> Handle?
    let enqueueWriteBuffer: @convention(c) (Handle?, Handle?, UInt32, Int, Int, UnsafeRawPointer?, UInt32,
                                            UnsafePointer<Handle?>?, UnsafeMutablePointer<Handle?>?) -> Status
    let enqueueReadBuffer: @convention(c) (Handle?, Handle?, UInt32, Int, Int, UnsafeMutableRawPointer?, UInt32,
                                           UnsafePointer<Handle?>?, UnsafeMutablePointer<Handle?>?) -> Status
    let enqueueFillBuffer: @convention(c) (Handle?, Handle?, UnsafeRawPointer?, Int, Int, Int, UInt32,
                                           UnsafePointer<Handle?>?, UnsafeMutablePointer<Handle?>?) -> Status
    let finish: @convention(c) (Handle?) -> Status
    let releaseMemObject: @convention(c) (Handle?) -> Status

    // The few constants used (cl.h).
    static let platformVersion: UInt32 = 0x0901, platformName: UInt32 = 0x0902
    static let deviceTypeAll: UInt64 = 0xFFFF_FFFF, deviceTypeGPU: UInt64 = 1 << 2
    static let deviceType: UInt32 = 0x1000, deviceGlobalMemSize: UInt32 = 0x101F, deviceName: UInt32 = 0x102B
    static let driverVersion: UInt32 = 0x102D, deviceVersion: UInt32 = 0x102F
    static let programBuildLog: UInt32 = 0x1183
    static let memReadWrite: UInt64 = 1 << 0

    init(_ library: DynamicLibrary) throws {
        getPlatformIDs = try library.function("clGetPlatformIDs")
        getPlatformInfo = try library.function("clGetPlatformInfo")
        getDeviceIDs = try library.function("clGetDeviceIDs")
        getDeviceInfo = try library.function("clGetDeviceInfo")
        createContext = try library.function("clCreateContext")
        createCommandQueue = try library.function("clCreateCommandQueue")
        createProgramWithSource = try library.function("clCreateProgramWithSource")
        buildProgram = try library.function("clBuildProgram")
        getProgramBuildInfo = try library.function("clGetProgramBuildInfo")
        createKernel = try library.function("clCreateKernel")
        setKernelArg = try library.function("clSetKernelArg")
        enqueueNDRangeKernel = try library.function("clEnqueueNDRangeKernel")
        createBuffer = try library.function("clCreateBuffer")
        enqueueWriteBuffer = try library.function("clEnqueueWriteBuffer")
        enqueueReadBuffer = try library.function("clEnqueueReadBuffer")
        enqueueFillBuffer = try library.function("clEnqueueFillBuffer")
        finish = try library.function("clFinish")
        releaseMemObject = try library.function("clReleaseMemObject")
    }
}

/// One OpenCL device behind `GPURuntime`: a context and one in-order command queue.
/// Contexts and queues live as long as the process (a GPU backend is made once per run).
final class OpenCLRuntime: GPURuntime, @unchecked Sendable {
    /// `libOpenCL.so.1`, or the file LENET_OPENCL_LIBRARY names (another loader; tests name a missing one).
    static var defaultLibrary: String { libraryFromEnvironment("LENET_OPENCL_LIBRARY") ?? "libOpenCL.so.1" }
    private static let hint = "install an OpenCL driver, e.g. Debian's ocl-icd-libopencl1 and pocl-opencl-icd"

    let device: GPUDeviceInfo
    private let api: OpenCLAPI
    private let deviceHandle: OpaquePointer
    private let context: OpaquePointer
    private let queue: OpaquePointer
    /// Setting a kernel's arguments and enqueueing it must not interleave between threads.
    private let launchLock = NSLock()

    /// Opens device `deviceIndex` (GPUs first, then other devices, in platform order).
    /// `library` names the OpenCL library (tests name one that does not exist).
    init(deviceIndex: Int = 0, library: String = OpenCLRuntime.defaultLibrary) throws {
        let api = try OpenCLAPI(DynamicLibrary([library], purpose: "OpenCL", hint: Self.hint))
        let found = try Self.findDevices(api)
        guard found.indices.contains(deviceIndex) else {
            throw GPUError(found.isEmpty ? "OpenCL is installed (\(library)) but no OpenCL device was found (\(Self.hint))"
                                         : "OpenCL device \(deviceIndex) does not exist: \(found.count) found")
        }
        let (platform, handle) = found[deviceIndex]
        var status: Int32 = 0
        var devices: [OpaquePointer?] = [handle]
        guard let context = api.createContext(nil, 1, &devices, nil, nil, &status), status == 0 else {
            throw GPUError("OpenCL could not create a context (\(Self.statusName(status)))")
        }
        guard let queue = api.createCommandQueue(context, handle, 0, &status), status == 0 else {
            throw GPUError("OpenCL could not create a command queue (\(Self.statusName(status)))")
        }
        self.api = api
        deviceHandle = handle
        self.context = context
        self.queue = queue
        device = Self.describe(api, platform: platform, device: handle, index: deviceIndex)
    }

    /// Every OpenCL device, GPUs first.
    static func devices(library: String = defaultLibrary) throws -> [GPUDeviceInfo] {
        let api = try OpenCLAPI(DynamicLibrary([library], purpose: "OpenCL", hint: hint))
        return try findDevices(api).enumerated().map { describe(api, platform: $1.platform, device: $1.device, index: $0) }
    }

    private static func findDevices(_ api: OpenCLAPI) throws -> [(platform: OpaquePointer, device: OpaquePointer)] {
        var platformCount: UInt32 = 0
        let status = api.getPlatformIDs(0, nil, &platformCount)
        // -1001 (CL_PLATFORM_NOT_FOUND_KHR): the ICD loader found no driver at all.
        if status == -1001 || platformCount == 0 { return [] }
        guard status == 0 else { throw GPUError("OpenCL could not list its platforms (\(statusName(status)))") }
        var platforms = [OpaquePointer?](repeating: nil, count: Int(platformCount))
        _ = api.getPlatformIDs(platformCount, &platforms, nil)
        var gpus: [(OpaquePointer, OpaquePointer)] = [], others: [(OpaquePointer, OpaquePointer)] = []
        for case let platform? in platforms {
            var count: UInt32 = 0
            guard api.getDeviceIDs(platform, OpenCLAPI.deviceTypeAll, 0, nil, &count) == 0, count > 0 else { continue }
            var devices = [OpaquePointer?](repeating: nil, count: Int(count))
            _ = api.getDeviceIDs(platform, OpenCLAPI.deviceTypeAll, count, &devices, nil)
            for case let device? in devices {
                var type: UInt64 = 0
                _ = api.getDeviceInfo(device, OpenCLAPI.deviceType, 8, &type, nil)
                if type & OpenCLAPI.deviceTypeGPU != 0 { gpus.append((platform, device)) } else { others.append((platform, device)) }
            }
        }
        return (gpus + others).map { (platform: $0.0, device: $0.1) }
    }

    private static func describe(_ api: OpenCLAPI, platform: OpaquePointer, device: OpaquePointer, index: Int) -> GPUDeviceInfo {
        func text(_ query: (UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Int32, _ name: UInt32) -> String {
            var size = 0
            guard query(name, 0, nil, &size) == 0, size > 0 else { return "?" }
            var bytes = [CChar](repeating: 0, count: size)
            _ = query(name, size, &bytes, nil)
            return stringFromCBuffer(bytes)
        }
        let deviceText = { (name: UInt32) in text({ api.getDeviceInfo(device, $0, $1, $2, $3) }, name) }
        var memory: UInt64 = 0, type: UInt64 = 0
        _ = api.getDeviceInfo(device, OpenCLAPI.deviceGlobalMemSize, 8, &memory, nil)
        _ = api.getDeviceInfo(device, OpenCLAPI.deviceType, 8, &type, nil)
        let platformName = text({ api.getPlatformInfo(platform, $0, $1, $2, $3) }, OpenCLAPI.platformName)
        return GPUDeviceInfo(runtime: .opencl, index: index, name: deviceText(OpenCLAPI.deviceName), memoryBytes: memory,
                             runtimeVersion: deviceText(OpenCLAPI.deviceVersion), driverVersion: deviceText(OpenCLAPI.driverVersion),
                             details: (type & OpenCLAPI.deviceTypeGPU != 0 ? "GPU" : "not a GPU") + ", " + platformName)
    }

    // MARK: GPURuntime

    func compile(_ source: String, kernels names: [String]) throws -> GPUProgram {
        var status: Int32 = 0
        let program: OpaquePointer? = source.withCString { text in
            var sources: [UnsafePointer<CChar>?] = [text]
            return api.createProgramWithSource(context, 1, &sources, nil, &status)
        }
        guard let program, status == 0 else { throw GPUError("OpenCL could not take the program (\(Self.statusName(status)))") }
        // Division and square root correctly rounded, as on the CPU and in CUDA (OpenCL
        // allows 2.5 ulp by default); no fast-math, so results follow IEEE arithmetic.
        let options = "-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt"
        var devices: [OpaquePointer?] = [deviceHandle]
        status = api.buildProgram(program, 1, &devices, options, nil, nil)
        guard status == 0 else {
            var size = 0
            _ = api.getProgramBuildInfo(program, deviceHandle, OpenCLAPI.programBuildLog, 0, nil, &size)
            var log = [CChar](repeating: 0, count: max(1, size))
            _ = api.getProgramBuildInfo(program, deviceHandle, OpenCLAPI.programBuildLog, size, &log, nil)
            throw GPUError("OpenCL could not compile the kernels (\(Self.statusName(status))): \(stringFromCBuffer(log))")
        }
        let kernels = try names.map { name in
            guard let kernel = api.createKernel(program, name, &status), status == 0 else {
                throw GPUError("OpenCL found no kernel \(name) in the program (\(Self.statusName(status)))")
            }
            return GPUKernel(name: name, handle: kernel)
        }
        return GPUProgram(runtime: self, kernels: kernels)
    }

    func allocate(bytes: Int) throws -> GPUBuffer {
        var status: Int32 = 0
        guard let memory = api.createBuffer(context, OpenCLAPI.memReadWrite, max(1, bytes), nil, &status), status == 0 else {
            throw GPUError("OpenCL could not allocate \(bytes) bytes (\(Self.statusName(status)))")
        }
        var zero: UInt8 = 0
        try check(api.enqueueFillBuffer(queue, memory, &zero, 1, 0, max(1, bytes), 0, nil, nil), "fill a buffer")
        return GPUBuffer(bytes: bytes, handle: UInt64(UInt(bitPattern: UnsafeRawPointer(memory))), runtime: self)
    }

    func copy(_ host: UnsafeRawPointer, to buffer: GPUBuffer, offset: Int, bytes: Int) throws {
        precondition(offset >= 0 && offset + bytes <= buffer.bytes, "copy past the end of a device buffer")
        // Blocking: the host memory may be reused as soon as this returns.
        try check(api.enqueueWriteBuffer(queue, Self.memory(buffer), 1, offset, bytes, host, 0, nil, nil), "copy to the device")
    }

    func copy(_ buffer: GPUBuffer, offset: Int, to host: UnsafeMutableRawPointer, bytes: Int) throws {
        precondition(offset >= 0 && offset + bytes <= buffer.bytes, "copy past the end of a device buffer")
        try check(api.enqueueReadBuffer(queue, Self.memory(buffer), 1, offset, bytes, host, 0, nil, nil), "copy from the device")
    }

    func launch(_ kernel: GPUKernel, _ arguments: [GPUArgument], items: Int, groupSize: Int) throws {
        guard items > 0 else { return }
        launchLock.lock()
        defer { launchLock.unlock() }
        for (index, argument) in arguments.enumerated() {
            let slot = UInt32(index)
            let status: Int32
            switch argument {
            case .buffer(let buffer):
                var memory: OpaquePointer? = Self.memory(buffer)
                status = api.setKernelArg(kernel.handle, slot, MemoryLayout<OpaquePointer?>.size, &memory)
            case .int(var value): status = api.setKernelArg(kernel.handle, slot, 4, &value)
            case .uint(var value): status = api.setKernelArg(kernel.handle, slot, 4, &value)
            case .float(var value): status = api.setKernelArg(kernel.handle, slot, 4, &value)
            }
            try check(status, "set argument \(index) of \(kernel.name)")
        }
        var global = (items + groupSize - 1) / groupSize * groupSize, local = groupSize
        try check(api.enqueueNDRangeKernel(queue, kernel.handle, 1, nil, &global, &local, 0, nil, nil), "launch \(kernel.name)")
    }

    func synchronize() throws { try check(api.finish(queue), "finish the queue") }

    func free(_ buffer: GPUBuffer) { _ = api.releaseMemObject(Self.memory(buffer)) }

    // MARK: Helpers

    private static func memory(_ buffer: GPUBuffer) -> OpaquePointer {
        OpaquePointer(bitPattern: UInt(buffer.handle))!
    }

    /// `what` is only built on failure: no string is made per launch or argument.
    private func check(_ status: Int32, _ what: @autoclosure () -> String) throws {
        guard status == 0 else { throw GPUError("OpenCL could not \(what()) (\(Self.statusName(status)))") }
    }

    /// The name of an OpenCL status code, for errors.
    static func statusName(_ status: Int32) -> String {
        let names: [Int32: String] = [
            -1: "CL_DEVICE_NOT_FOUND", -2: "CL_DEVICE_NOT_AVAILABLE", -3: "CL_COMPILER_NOT_AVAILABLE",
            -4: "CL_MEM_OBJECT_ALLOCATION_FAILURE", -5: "CL_OUT_OF_RESOURCES", -6: "CL_OUT_OF_HOST_MEMORY",
            -11: "CL_BUILD_PROGRAM_FAILURE", -30: "CL_INVALID_VALUE", -33: "CL_INVALID_DEVICE", -34: "CL_INVALID_CONTEXT",
            -36: "CL_INVALID_COMMAND_QUEUE", -38: "CL_INVALID_MEM_OBJECT", -44: "CL_INVALID_PROGRAM",
            -45: "CL_INVALID_PROGRAM_EXECUTABLE", -46: "CL_INVALID_KERNEL_NAME", -48: "CL_INVALID_KERNEL",
            -49: "CL_INVALID_ARG_INDEX", -50: "CL_INVALID_ARG_VALUE", -51: "CL_INVALID_ARG_SIZE",
            -52: "CL_INVALID_KERNEL_ARGS", -54: "CL_INVALID_WORK_GROUP_SIZE", -61: "CL_INVALID_BUFFER_SIZE",
            -1001: "CL_PLATFORM_NOT_FOUND_KHR",
        ]
        return names[status] ?? "OpenCL error \(status)"
    }
}
