import ArgumentParser
import Foundation
import LeNetKit

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Recognise digits in your own pictures (PNG, PGM, PPM) with a trained checkpoint.",
        discussion: """
        Each picture should hold one digit, dark on light or light on dark. It is prepared the \
        way MNIST was: ink found against the border's background, cropped, scaled to 20 pixels \
        (aspect kept, antialiased) and centred by mass in 28x28. A directory argument means \
        every .png, .pgm, .ppm and .pnm file in it. Files that cannot be read or hold no digit \
        get an error on standard error, the others are still classified; the exit status is 1 \
        if any failed. --device opencl or cuda runs the network on that GPU (the pictures are \
        still prepared on the CPU).
        """
    )

    @Option(help: "The checkpoint (.safetensors) from `lenet train`, or PyTorch's state_dict.")
    var checkpoint: String

    @Argument(help: "Image files, or directories of them.")
    var images: [String]

    @Flag(help: "One JSON object per line and image: {\"file\", \"digit\", \"probabilities\", \"top\"}, where top lists the --top most likely digits as {\"digit\", \"probability\"}.")
    var json = false

    @Option(parsing: .unconditional, help: "How many of the most likely digits to print (1-10).")
    var top = 3

    @Flag(help: "Draw the 28x28 image the network saw in the terminal.")
    var show = false

    @OptionGroup var deviceChoice: DeviceOptions

    func validate() throws {
        guard (1...10).contains(top) else { throw ValidationError("--top must be between 1 and 10") }
        guard !images.isEmpty else { throw ValidationError("name at least one image or directory") }
    }

    func run() throws {
        // One image at a time: the CPU backend on one thread, or the GPU.
        let predictor = try Predictor(checkpointPath: checkpoint, device: deviceChoice.makeDevice(cpuThreads: 1))
        var failures = 0
        for path in images.flatMap(Self.expand) {
            do {
                if Self.isDirectory(path) {
                    throw InferenceError(file: path, "directory holds no .png, .pgm, .ppm or .pnm files")
                }
                let (prepared, prediction) = try predictor.predict(contentsOf: path)
                if json {
                    print(prediction.jsonLine(file: path, top: top))
                } else {
                    let ranked = prediction.top(top).map { "\($0.digit) (\(String(format: "%.1f%%", $0.probability * 100)))" }
                    print("\(path): \(ranked.joined(separator: "  "))")
                }
                if show {
                    let drawing = prepared.withUnsafeBufferPointer { TerminalImage.render(images: $0, count: 1, threshold: 0.35) }
                    (json ? printToStandardError : { print($0) })(String(drawing.dropLast()))
                }
            } catch {
                failures += 1
                printToStandardError("Error: \(error)")
            }
        }
        if failures > 0 {
            printToStandardError("\(failures) image\(failures == 1 ? "" : "s") failed")
            throw ExitCode(1)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// A directory's image files (sorted, not recursive), or the path itself.
    static func expand(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
              let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [path] }
        let found = names.filter { ["png", "pgm", "ppm", "pnm"].contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted().map { (path as NSString).appendingPathComponent($0) }
        return found.isEmpty ? [path] : found
    }
}
