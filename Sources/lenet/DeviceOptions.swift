import ArgumentParser
import LeNetKit

/// `--device`: the CPU backend, or the GPU one through OpenCL or CUDA.
enum DeviceKind: String, ExpressibleByArgument, CaseIterable {
    case cpu, opencl, cuda
}

/// `--device` for every command that computes (train, experiment, evaluate, bench, predict,
/// serve): one option, one check that the GPU runtime is there.
struct DeviceOptions: ParsableArguments {
    @Option(name: .customLong("device"), help: "Where to compute: cpu, opencl or cuda (`lenet devices` lists them).")
    var kind: DeviceKind = .cpu

    func validate() throws {
        // A GPU runtime that is missing fails here, in one line, before any work starts.
        if kind != .cpu { _ = try makeDevice(cpuThreads: 1) }
    }

    /// Where the work runs: the CPU backend with `cpuThreads` threads, or the GPU. Each GPU
    /// device opens its runtime and compiles the kernels for its first network, so a command
    /// makes one and uses it throughout.
    func makeDevice(cpuThreads: Int) throws -> ComputeDevice {
        switch kind {
        case .cpu: .cpu(threads: cpuThreads)
        case .opencl: try .opencl()
        case .cuda: try .cuda()
        }
    }
}
