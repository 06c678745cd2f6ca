/// What a model is, independent of where it runs: its layers in order, with the
/// names PyTorch would give them. Backends build their executable network from this.

public enum ModelVariant: String, CaseIterable, Sendable, Codable {
    /// The tutorial's LeNet-5: 61,706 parameters.
    case lenet
    /// The same with BatchNorm2d after conv1 and conv2 and Dropout(0.5) after fc1's ReLU.
    case lenetBN = "lenet-bn"
}

public enum LayerSpec: Sendable, Equatable {
    case conv2d(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int)
    case batchNorm2d(name: String, channels: Int)
    case relu
    case maxPool2d(size: Int)
    case flatten
    case linear(name: String, inFeatures: Int, outFeatures: Int)
    case dropout(p: Float)

    /// The PyTorch module class this layer corresponds to.
    public var typeName: String {
        switch self {
        case .conv2d: "Conv2d"
        case .batchNorm2d: "BatchNorm2d"
        case .relu: "ReLU"
        case .maxPool2d: "MaxPool2d"
        case .flatten: "Flatten"
        case .linear: "Linear"
        case .dropout: "Dropout"
        }
    }

    /// The module name ("conv1"), or nil for layers without state.
    public var name: String? {
        switch self {
        case .conv2d(let name, _, _, _, _, _), .batchNorm2d(let name, _), .linear(let name, _, _): name
        default: nil
        }
    }

    /// Per-sample output shape ([C, H, W] or [features]) for a per-sample input shape.
    public func outputShape(for input: [Int]) -> [Int] {
        switch self {
        case .conv2d(_, _, let outChannels, let k, let stride, let padding):
            [outChannels, (input[1] + 2 * padding - k) / stride + 1, (input[2] + 2 * padding - k) / stride + 1]
        case .maxPool2d(let size): [input[0], input[1] / size, input[2] / size]
        case .flatten: [input.reduce(1, *)]
        case .linear(_, _, let outFeatures): [outFeatures]
        case .batchNorm2d, .relu, .dropout: input
        }
    }

    /// Trainable tensors in PyTorch's state_dict order, then non-trainable buffers.
    public var parameterShapes: [(name: String, shape: [Int])] {
        switch self {
        case .conv2d(let name, let inChannels, let outChannels, let k, _, _):
            [("\(name).weight", [outChannels, inChannels, k, k]), ("\(name).bias", [outChannels])]
        case .batchNorm2d(let name, let channels):
            [("\(name).weight", [channels]), ("\(name).bias", [channels])]
        case .linear(let name, let inFeatures, let outFeatures):
            [("\(name).weight", [outFeatures, inFeatures]), ("\(name).bias", [outFeatures])]
        default: []
        }
    }

    /// Running statistics (BatchNorm's running_mean and running_var).
    public var bufferShapes: [(name: String, shape: [Int])] {
        if case .batchNorm2d(let name, let channels) = self {
            return [("\(name).running_mean", [channels]), ("\(name).running_var", [channels])]
        }
        return []
    }
}

public struct ModelDefinition: Sendable, Equatable {
    public var variant: ModelVariant
    /// Per-sample input shape [C, H, W].
    public var inputShape: [Int]
    public var layers: [LayerSpec]
    public var classes: Int { layers.reduce(inputShape) { $1.outputShape(for: $0) }.reduce(1, *) }

    public init(variant: ModelVariant, inputShape: [Int], layers: [LayerSpec]) {
        self.variant = variant
        self.inputShape = inputShape
        self.layers = layers
    }

    /// LeNet-5 as in the tutorial. conv1's padding of 2 keeps 28x28, so that two
    /// 2x2 poolings and conv2 leave 16x5x5 = 400 features for fc1.
    public static func lenet(_ variant: ModelVariant = .lenet) -> ModelDefinition {
        let bn = variant == .lenetBN
        var layers: [LayerSpec] = [.conv2d(name: "conv1", inChannels: 1, outChannels: 6, kernel: 5, stride: 1, padding: 2)]
        if bn { layers.append(.batchNorm2d(name: "bn1", channels: 6)) }
        layers += [.relu, .maxPool2d(size: 2),
                   .conv2d(name: "conv2", inChannels: 6, outChannels: 16, kernel: 5, stride: 1, padding: 0)]
        if bn { layers.append(.batchNorm2d(name: "bn2", channels: 16)) }
        layers += [.relu, .maxPool2d(size: 2), .flatten,
                   .linear(name: "fc1", inFeatures: 400, outFeatures: 120), .relu]
        if bn { layers.append(.dropout(p: 0.5)) }
        layers += [.linear(name: "fc2", inFeatures: 120, outFeatures: 84), .relu,
                   .linear(name: "fc3", inFeatures: 84, outFeatures: 10)]
        return ModelDefinition(variant: variant, inputShape: [1, 28, 28], layers: layers)
    }

    /// Per-sample shapes: element 0 is the input, element i+1 the output of layer i.
    public var activationShapes: [[Int]] {
        var shapes = [inputShape]
        for layer in layers { shapes.append(layer.outputShape(for: shapes[shapes.count - 1])) }
        return shapes
    }

    public var parameterCount: Int {
        layers.flatMap(\.parameterShapes).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}
