import Foundation
@testable import LeNetKit
import Testing

/// Without a GPU runtime, every way in says what is missing in one line. A library name
/// that does not exist stands for a machine without the driver.
@Suite struct GPURuntimeTests {
    static func expectOneLine(_ error: any Error, naming what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = "\(error)"
        #expect(!text.contains("\n"), "not one line: \(text)", sourceLocation: sourceLocation)
        #expect(text.contains(what), "\(text) does not name \(what)", sourceLocation: sourceLocation)
    }

    @Test func aMissingOpenCLLibraryIsOneLineNamingIt() {
        let error = #expect(throws: GPUError.self) { try OpenCLRuntime(library: "libOpenCL-missing.so.1") }
        if let error {
            Self.expectOneLine(error, naming: "libOpenCL-missing.so.1")
            #expect(error.description.hasPrefix("OpenCL is not available"))
        }
        #expect(throws: GPUError.self) { try OpenCLRuntime.devices(library: "libOpenCL-missing.so.1") }
    }

    @Test func aMissingCUDADriverIsOneLineNamingIt() {
        let error = #expect(throws: GPUError.self) { try CUDARuntime(library: "libcuda-missing.so.1") }
        if let error {
            Self.expectOneLine(error, naming: "libcuda-missing.so.1")
            #expect(error.description.hasPrefix("CUDA is not available"))
        }
    }

    @Test func aMissingFunctionNamesTheLibraryAndTheFunction() throws {
        let library = try DynamicLibrary(["libc.so.6"], purpose: "C", hint: "")
        let error = #expect(throws: GPUError.self) {
            try library.function("clNoSuchFunction", as: (@convention(c) () -> Void).self)
        }
        if let error {
            Self.expectOneLine(error, naming: "clNoSuchFunction")
            #expect(error.description.contains("libc.so.6"))
        }
    }

    @Test func driverLogsBecomeOneLine() {
        #expect(GPUError("could not compile:\nline 1: error\n\n  line 2: note").description
                == "could not compile:; line 1: error; line 2: note")
    }

    /// The command: `--device opencl` and `--device cuda` fail at once, in one line, with a
    /// non-zero exit, on every command that takes --device (before the data, the checkpoint
    /// or the pictures are looked at: none of them exists here), and `lenet devices` says
    /// none was found.
    @Test func theCommandSaysWhatIsMissing() throws {
        let missing = ["LENET_OPENCL_LIBRARY": "libOpenCL-missing.so.1", "LENET_CUDA_LIBRARY": "libcuda-missing.so.1"]
        let noData = ["--data-dir", "/nonexistent"]
        let commands = [["train", "--epochs", "1"] + noData, ["experiment", "--epochs", "1"] + noData,
                        ["evaluate", "--checkpoint", "none.safetensors"] + noData, ["bench"] + noData,
                        ["predict", "--checkpoint", "none.safetensors", "none.png"],
                        ["serve", "--checkpoint", "none.safetensors", "--port", "0"]]
        for (device, library) in [("opencl", "libOpenCL-missing.so.1"), ("cuda", "libcuda-missing.so.1")] {
            for command in commands {
                let outcome = try CommandLineTests.run(command + ["--device", device], environment: missing)
                let lines = outcome.stderr.split(separator: "\n")
                #expect(outcome.status != 0, "\(command) --device \(device): exit \(outcome.status)")
                #expect(lines.count == 1 && lines[0].contains(library), "\(command) --device \(device): \(outcome.stderr)")
            }
        }
        let devices = try CommandLineTests.run(["devices"], environment: missing)
        #expect(devices.status == 0)
        #expect(devices.stdout.contains("No GPU runtime or device was found"), "\(devices.stdout)")
        #expect(devices.stdout.contains("libOpenCL-missing.so.1") && devices.stdout.contains("libcuda-missing.so.1"))
    }
}
