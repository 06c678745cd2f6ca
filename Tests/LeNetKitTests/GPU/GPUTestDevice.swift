import Foundation
@testable import LeNetKit
import Testing

/// The GPU device the GPU tests run on, with the kernels compiled once per test process:
/// through the runtime that LENET_TEST_GPU_RUNTIME names, `opencl` (the default; PoCL on
/// the CPU in CI) or `cuda` (a lent NVIDIA machine: Scripts/gpu/device_run.sh), so that
/// the same suites check both runtimes.
///
/// Without a device the GPU tests skip with a message, unless LENET_REQUIRE_GPU=1 (CI sets
/// it): then each one fails, so that
/// CI cannot pass without running them. A runtime name that is neither fails them always.
final class GPUTestDevice: @unchecked Sendable {
    let kind: GPURuntimeKind
    let runtime: any GPURuntime
    let program: GPUProgram

    private init(_ kind: GPURuntimeKind) throws {
        self.kind = kind
        runtime = try GPURuntimes.open(kind)
        program = try runtime.compile(KernelSources.program, kernels: KernelSources.kernelNames)
    }

    static let environment = ProcessInfo.processInfo.environment

    /// The runtime's name as given (`opencl` when unset or empty).
    static let runtimeName: String = {
        let name = environment["LENET_TEST_GPU_RUNTIME"] ?? ""
        return name.isEmpty ? GPURuntimeKind.opencl.rawValue : name
    }()

    /// What the messages call it: "OpenCL", "CUDA", or the unknown name as given.
    static var displayName: String { GPURuntimeKind(rawValue: runtimeName)?.displayName ?? runtimeName }

    struct UnknownRuntime: Error, CustomStringConvertible {
        var description: String {
            "LENET_TEST_GPU_RUNTIME=\(runtimeName) names no GPU runtime (one of: "
                + GPURuntimeKind.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        }
    }

    /// Opened once; the device is named on standard error, so that a log shows what the tests ran on.
    private static let opened: Result<GPUTestDevice, Error> = {
        let result = Result {
            guard let kind = GPURuntimeKind(rawValue: runtimeName) else { throw UnknownRuntime() }
            return try GPUTestDevice(kind)
        }
        if case .success(let device) = result {
            FileHandle.standardError.write(Data("GPU tests run on \(device.runtime.device.line)\n".utf8))
        }
        return result
    }()

    static var isRequired: Bool { environment["LENET_REQUIRE_GPU"] == "1" }

    /// The device, or nil once the reason is recorded: a test failure when it is required
    /// (or the runtime's name is unknown), else a note on standard error (the test then
    /// passes without checking anything).
    static func get(sourceLocation: SourceLocation = #_sourceLocation) -> GPUTestDevice? {
        switch opened {
        case .success(let device): return device
        case .failure(let error as UnknownRuntime):
            Issue.record("\(error)", sourceLocation: sourceLocation)
        case .failure(let error):
            if isRequired {
                Issue.record("LENET_REQUIRE_GPU=1 but no \(displayName) device: \(error)", sourceLocation: sourceLocation)
            } else {
                FileHandle.standardError.write(Data("skipped (no \(displayName) device; set LENET_REQUIRE_GPU=1 to fail instead): \(error)\n".utf8))
            }
        }
        return nil
    }

    // MARK: Buffers and launches, briefly

    func upload(_ values: [Float]) throws -> GPUBuffer { try runtime.upload(values) }
    func upload(_ values: [Int32]) throws -> GPUBuffer { try runtime.upload(values) }
    func upload(_ values: [UInt8]) throws -> GPUBuffer { try runtime.upload(values) }
    /// `count` floats of zeros (or any 4-byte values).
    func zeros(_ count: Int) throws -> GPUBuffer { try runtime.allocate(bytes: count * 4) }
    func floats(_ buffer: GPUBuffer, _ count: Int) throws -> [Float] { try runtime.download(buffer, count: count, as: Float.self) }
    func ints(_ buffer: GPUBuffer, _ count: Int) throws -> [Int32] { try runtime.download(buffer, count: count, as: Int32.self) }
    func bytes(_ buffer: GPUBuffer, _ count: Int) throws -> [UInt8] { try runtime.download(buffer, count: count, as: UInt8.self) }

    func run(_ kernel: String, _ arguments: [GPUArgument], items: Int, groupSize: Int = 64) throws {
        try program.launch(kernel, arguments, items: items, groupSize: groupSize)
    }

    /// Runs a reducing kernel: one group of `KernelSources.reduceItems` items per sum.
    func runGroups(_ kernel: String, _ arguments: [GPUArgument], groups: Int) throws {
        try program.launch(kernel, arguments, items: groups * KernelSources.reduceItems, groupSize: KernelSources.reduceItems)
    }
}
