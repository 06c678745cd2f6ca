import Foundation
import SwiftProtobuf

/// Writes a checkpoint as an ONNX model for inference: opset 13, input `input`
/// float32 [N,1,28,28] with a dynamic batch `N`, output `logits` float32 [N,10].
///
/// The graph is the evaluation-mode network: Conv, Relu, MaxPool, Conv, Relu, MaxPool,
/// Flatten, Gemm (transB=1), Relu, Gemm, Relu, Gemm. BatchNorm is folded into the
/// convolution before it with the running statistics (w' = w·s, b' = (b − μ)·s + β with
/// s = γ/√(σ² + ε), computed in Double, rounded once to Float); dropout is the identity.
public enum ONNXExport {
    public static let opsetVersion: Int64 = 13
    /// The IR version that goes with opset 13.
    public static let irVersion: Int64 = 7
    public static let inputName = "input"
    public static let outputName = "logits"
    /// The dynamic batch dimension's name.
    public static let batchDimension = "N"
    /// BatchNorm2d's default epsilon, as PyTorch and lenet use it.
    public static let batchNormEpsilon = 1e-5

    /// The ONNX model of a checkpoint.
    static func model(_ checkpoint: Checkpoint) throws -> Onnx_ModelProto {
        let definition = checkpoint.definition
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: checkpoint.source, message: message) }
        func floats(_ name: String) throws -> [Float] {
            guard let values = checkpoint.value(name) else { throw fail("no F32 tensor \"\(name)\" to export") }
            return values
        }

        var graph = Onnx_GraphProto()
        graph.name = definition.variant.rawValue
        var current = inputName
        var counts: [String: Int] = [:]
        func output(_ kind: String) -> String {
            counts[kind, default: 0] += 1
            return "\(kind)\(counts[kind]!)"
        }
        func addNode(_ type: String, inputs: [String], attributes: [Onnx_AttributeProto] = [], name: String) {
            var node = Onnx_NodeProto()
            node.opType = type
            node.name = name
            node.input = inputs
            node.output = [name]
            node.attribute = attributes
            graph.node.append(node)
            current = name
        }

        let layers = definition.layers
        var index = 0
        while index < layers.count {
            let layer = layers[index]
            switch layer {
            case .conv2d(let name, _, let outChannels, let kernel, let stride, let padding):
                let weightShape = layer.parameterShapes[0].shape
                var weight = try floats("\(name).weight"), bias = try floats("\(name).bias")
                if index + 1 < layers.count, case .batchNorm2d(let bn, let channels) = layers[index + 1], channels == outChannels {
                    let gamma = try floats("\(bn).weight"), beta = try floats("\(bn).bias")
                    let mean = try floats("\(bn).running_mean"), variance = try floats("\(bn).running_var")
                    let perChannel = weight.count / outChannels
                    for c in 0..<outChannels {
                        let scale = Double(gamma[c]) / (Double(variance[c]) + batchNormEpsilon).squareRoot()
                        for i in 0..<perChannel {
                            weight[c * perChannel + i] = Float(Double(weight[c * perChannel + i]) * scale)
                        }
                        bias[c] = Float((Double(bias[c]) - Double(mean[c])) * scale + Double(beta[c]))
                    }
                    index += 1  // the BatchNorm is inside the convolution now
                }
                graph.initializer.append(tensor("\(name).weight", weight, shape: weightShape))
                graph.initializer.append(tensor("\(name).bias", bias, shape: [outChannels]))
                addNode("Conv", inputs: [current, "\(name).weight", "\(name).bias"], attributes: [
                    ints("kernel_shape", [kernel, kernel]), ints("strides", [stride, stride]),
                    ints("pads", [padding, padding, padding, padding]), ints("dilations", [1, 1]), int("group", 1),
                ], name: name)
            case .batchNorm2d(let name, _):
                throw fail("\(name): a BatchNorm that does not follow a convolution cannot be folded")
            case .relu:
                addNode("Relu", inputs: [current], name: output("relu"))
            case .maxPool2d(let size):
                addNode("MaxPool", inputs: [current], attributes: [
                    ints("kernel_shape", [size, size]), ints("strides", [size, size]), ints("pads", [0, 0, 0, 0]),
                ], name: output("pool"))
            case .flatten:
                addNode("Flatten", inputs: [current], attributes: [int("axis", 1)], name: output("flatten"))
            case .linear(let name, let inFeatures, let outFeatures):
                graph.initializer.append(tensor("\(name).weight", try floats("\(name).weight"), shape: [outFeatures, inFeatures]))
                graph.initializer.append(tensor("\(name).bias", try floats("\(name).bias"), shape: [outFeatures]))
                addNode("Gemm", inputs: [current, "\(name).weight", "\(name).bias"], attributes: [
                    float("alpha", 1), float("beta", 1), int("transA", 0), int("transB", 1),
                ], name: name)
            case .dropout:
                break  // identity in evaluation mode
            }
            index += 1
        }
        // The last node writes the graph's output.
        if var last = graph.node.popLast() {
            last.output = [outputName]
            graph.node.append(last)
        }
        graph.input = [valueInfo(inputName, [nil] + definition.inputShape.map { Int64($0) })]
        graph.output = [valueInfo(outputName, [nil, Int64(definition.classes)])]

        var model = Onnx_ModelProto()
        model.irVersion = irVersion
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = opsetVersion
        model.opsetImport = [opset]
        model.producerName = "lenet"
        model.producerVersion = "1"
        model.modelVersion = 1
        model.docString = "LeNet-5 (\(definition.variant.rawValue)) exported by lenet; BatchNorm folded, evaluation mode."
        model.graph = graph
        model.metadataProps = checkpoint.metadata.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        return model
    }

    /// The serialized ONNX model of a checkpoint.
    public static func serialized(_ checkpoint: Checkpoint) throws -> [UInt8] {
        try model(checkpoint).serializedBytes()
    }

    /// Writes the ONNX model through a temporary file, fsync and rename.
    public static func write(_ checkpoint: Checkpoint, to path: String) throws {
        try LocalFile.writeAtomically(serialized(checkpoint), to: path) { CheckpointError(file: $0, message: $1) }
    }

    // MARK: Building blocks

    static func tensor(_ name: String, _ values: [Float], shape: [Int]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.dims = shape.map { Int64($0) }
        var bytes = Data(count: values.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, value) in values.enumerated() {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        tensor.rawData = bytes
        return tensor
    }

    /// A float32 tensor value; nil dimensions are the dynamic batch.
    static func valueInfo(_ name: String, _ dims: [Int64?]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { size in
            var dimension = Onnx_TensorShapeProto.Dimension()
            if let size { dimension.dimValue = size } else { dimension.dimParam = batchDimension }
            return dimension
        }
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensorType.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensorType
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        return info
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .ints
        attribute.ints = values.map { Int64($0) }
        return attribute
    }

    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .int
        attribute.i = Int64(value)
        return attribute
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .float
        attribute.f = value
        return attribute
    }
}
