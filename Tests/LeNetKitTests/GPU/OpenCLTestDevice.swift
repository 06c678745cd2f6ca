import Foundation
@testable import LeNetKit
import Testing

/// The OpenCL device the GPU tests run on (PoCL on the CPU in CI), with the kernels
/// compiled once per test process.
///
/// Without a device the GPU tests skip with a message, unless LENET_REQUIRE_OPENCL=1
/// (CI sets it): then each one fails, so that CI cannot pass without running them.
final class OpenCLTestDevice: @unchecked Sendable {
    let runtime: any GPURuntime
    let program: GPUProgram

    private init() throws {
        runtime = try OpenCLRuntime()
        program = try runtime.compile(KernelSources.program, kernels: KernelSources.kernelNames)
    }

    private static let opened = Result { try OpenCLTestDevice() }

    static var isRequired: Bool { ProcessInfo.processInfo.environment["LENET_REQUIRE_OPENCL"] == "1" }

    /// The device, or nil once the reason is recorded: a test failure when it is required,
    /// else a note on standard error (the test then passes without checking anything).
    static func get(sourceLocation: SourceLocation = #_sourceLocation) -> OpenCLTestDevice? {
        switch opened {
        case .success(let device): return device
        case .failure(let error):
            if isRequired {
                Issue.record("LENET_REQUIRE_OPENCL=1 but no OpenCL device: \(error)", sourceLocation: sourceLocation)
            } else {
                FileHandle.standardError.write(Data("skipped (no OpenCL device; set LENET_REQUIRE_OPENCL=1 to fail instead): \(error)\n".utf8))
            }
            return nil
        }
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
