import Foundation
@testable import LeNetKit
import SwiftProtobuf
import Testing

/// The ONNX export, decoded back with SwiftProtobuf: opset, IR version, the dynamic batch,
/// the node sequence, BatchNorm folded into the convolutions. (That ONNX Runtime predicts
/// what lenet does is Scripts/ci/check_onnx.py's job.)
@Suite struct ExportONNXTests {
    static let nodes = ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten",
                        "Gemm", "Relu", "Gemm", "Relu", "Gemm"]

    static func decoded(_ file: String) throws -> (Checkpoint, Onnx_ModelProto) {
        let checkpoint = try Checkpoint(contentsOf: fixturesDirectory + "/\(file).safetensors")
        let bytes = try ONNXExport.serialized(checkpoint)
        return (checkpoint, try Onnx_ModelProto(serializedBytes: bytes))
    }

    static func floats(_ tensor: Onnx_TensorProto) -> [Float] {
        tensor.rawData.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    @Test(arguments: ["pytorch_lenet", "pytorch_lenet_bn"])
    func structure(file: String) throws {
        let (_, model) = try Self.decoded(file)
        #expect(model.irVersion == 7)
        #expect(model.opsetImport.count == 1)
        #expect(model.opsetImport.first?.domain == "" && (model.opsetImport.first?.version ?? 0) >= 13)
        let graph = model.graph
        #expect(graph.node.map(\.opType) == Self.nodes)
        #expect(!graph.node.contains { $0.opType == "BatchNormalization" || $0.opType == "Dropout" })

        #expect(graph.input.count == 1 && graph.output.count == 1)
        let input = graph.input[0], output = graph.output[0]
        #expect(input.name == "input" && output.name == "logits")
        #expect(input.type.tensorType.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue))
        let inputDims = input.type.tensorType.shape.dim
        #expect(inputDims.count == 4)
        #expect(inputDims.first?.value == .dimParam("N"))
        #expect(inputDims.dropFirst().map(\.dimValue) == [1, 28, 28])
        let outputDims = output.type.tensorType.shape.dim
        #expect(outputDims.first?.dimParam == "N" && outputDims.last?.dimValue == 10)
        #expect(graph.node.first?.input.first == "input" && graph.node.last?.output == ["logits"])
        // Each node reads the previous node's output.
        for (previous, node) in zip(graph.node, graph.node.dropFirst()) {
            #expect(node.input.first == previous.output.first)
        }

        let initializers = Dictionary(uniqueKeysWithValues: graph.initializer.map { ($0.name, $0) })
        #expect(initializers.count == 10)
        #expect(initializers["conv1.weight"]?.dims == [6, 1, 5, 5])
        #expect(initializers["fc1.weight"]?.dims == [120, 400])
        #expect(!initializers.keys.contains { $0.hasPrefix("bn") })
        let conv1 = graph.node[0]
        let attributes = Dictionary(uniqueKeysWithValues: conv1.attribute.map { ($0.name, $0) })
        #expect(attributes["pads"]?.ints == [2, 2, 2, 2] && attributes["kernel_shape"]?.ints == [5, 5])
        let gemm = graph.node[7]
        #expect(gemm.attribute.first { $0.name == "transB" }?.i == 1)
        #expect(model.metadataProps.contains { $0.key == "variant" })
    }

    @Test func batchNormIsFoldedWithRunningStatistics() throws {
        let (checkpoint, model) = try Self.decoded("pytorch_lenet_bn")
        let initializers = Dictionary(uniqueKeysWithValues: model.graph.initializer.map { ($0.name, $0) })
        for (conv, bn, channels) in [("conv1", "bn1", 6), ("conv2", "bn2", 16)] {
            let w = try #require(checkpoint.value("\(conv).weight")), b = try #require(checkpoint.value("\(conv).bias"))
            let gamma = try #require(checkpoint.value("\(bn).weight")), beta = try #require(checkpoint.value("\(bn).bias"))
            let mean = try #require(checkpoint.value("\(bn).running_mean")), variance = try #require(checkpoint.value("\(bn).running_var"))
            let foldedW = Self.floats(try #require(initializers["\(conv).weight"]))
            let foldedB = Self.floats(try #require(initializers["\(conv).bias"]))
            #expect(foldedW.count == w.count && foldedB.count == channels)
            #expect(mean.contains { $0 != 0 })  // the fixture's statistics are not the defaults
            let per = w.count / channels
            for c in 0..<channels {
                let scale = gamma[c] / (variance[c] + 1e-5).squareRoot()
                #expect(abs(foldedB[c] - ((b[c] - mean[c]) * scale + beta[c])) <= 1e-5)
                for i in 0..<per {
                    #expect(abs(foldedW[c * per + i] - w[c * per + i] * scale) <= 1e-6 * max(1, abs(w[c * per + i] * scale)))
                }
            }
        }
    }

    @Test func exportWritesTheFileAtomically() throws {
        let checkpoint = try Checkpoint(contentsOf: fixturesDirectory + "/pytorch_lenet.safetensors")
        let directory = try DataFixtures.temporaryDirectory()
        let path = directory + "/model.onnx"
        try ONNXExport.write(checkpoint, to: path)
        let model = try Onnx_ModelProto(serializedBytes: try FileIOTestSupport.bytes(path))
        #expect(model.graph.node.count == Self.nodes.count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.onnx"])
    }
}
