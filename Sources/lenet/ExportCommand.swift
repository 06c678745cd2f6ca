import ArgumentParser
import Foundation
import LeNetKit

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint as an ONNX model (opset 13, input [N,1,28,28] float32, BatchNorm folded).",
        discussion: "The graph is the evaluation-mode network: input `input` [N,1,28,28] float32 (pixels / 255, N dynamic), output `logits` [N,10]. BatchNorm is folded into the convolution before it, using the running statistics; dropout is left out."
    )

    @Option(help: "The checkpoint to export (.safetensors, from lenet or PyTorch's state_dict).")
    var checkpoint: String

    @Option(help: "Where to write the ONNX model.")
    var onnx: String

    func run() throws {
        try RunFolder.checkCanWrite(file: onnx)
        let model = try Checkpoint(contentsOf: checkpoint)
        try ONNXExport.write(model, to: onnx)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int) ?? 0
        let folded = model.variant == .lenetBN ? "; BatchNorm folded into conv1 and conv2" : ""
        print("Wrote \(onnx) (\(model.variant.rawValue), opset \(ONNXExport.opsetVersion), \(bytes) bytes\(folded))")
    }
}
