import ArgumentParser
import LeNetKit

/// `lenet devices`: the GPUs that `--device opencl` and `--device cuda` can use.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the GPUs that OpenCL and CUDA find: name, memory, runtime and driver versions."
    )

    func run() throws {
        let survey = GPUDeviceSurvey.run()
        print("cpu: \(ComputeDevice.availableCores) cores (--device cpu, the default)")
        for device in survey.devices { print(device.line) }
        for (runtime, reason) in survey.missing { print("\(runtime.rawValue): none (\(reason))") }
        if survey.devices.isEmpty { print("No GPU runtime or device was found: --device cpu is the choice here.") }
    }
}
