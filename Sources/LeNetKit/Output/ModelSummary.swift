import Foundation

/// A torchinfo-style summary of a `ModelDefinition` for a given batch size: one row per
/// layer with its output shape and parameter count, then the totals, the mult-adds and the
/// memory estimate, all computed the way torchinfo (1.8) computes them:
/// - parameters exclude buffers (BatchNorm's running statistics), so nothing is non-trainable;
/// - mult-adds count, for each weight and bias element, one multiply-add per output position
///   and image (Conv: elements x batch x H x W; others: elements x batch);
/// - forward/backward size is twice the output bytes of the layers that have parameters;
/// - sizes are in MB of 10^6 bytes, float32 throughout.
/// `multiplyAddsPerImage` is the plain count of weight products per image (no biases),
/// the figure the engine's speed is measured against.
public struct ModelSummary: Sendable {
    public struct Row: Sendable, Equatable {
        /// PyTorch class name: "Conv2d".
        public var typeName: String
        /// Module name ("conv1"), nil for stateless layers.
        public var moduleName: String?
        /// torchinfo's label: "Conv2d: 1-1".
        public var label: String
        /// Output shape including the batch: [32, 6, 28, 28].
        public var outputShape: [Int]
        public var parameters: Int
        public var trainableParameters: Int
        /// torchinfo's mult-adds for this layer (whole batch, weights and biases).
        public var multAdds: Int
        /// Weight products per image (no biases, no batch).
        public var multiplyAddsPerImage: Int
        public var outputBytes: Int
    }

    public let definition: ModelDefinition
    public let batchSize: Int
    public let rows: [Row]
    /// The top row's name: the model, as torchinfo names the class (`LeNet`, `LeNet-BN`).
    public var modelName: String { definition.variant == .lenetBN ? "LeNet-BN" : "LeNet" }
    public var outputShape: [Int] { rows.last?.outputShape ?? [batchSize] + definition.inputShape }

    /// What a backend really holds to train at this batch size (`ComputeDevice.plannedBytes`),
    /// printed below torchinfo's estimate when set. torchinfo counts only twice the outputs of
    /// the layers with parameters; a backend also keeps every other activation, gradients,
    /// optimizer state and scratch.
    public var backendMemory: (device: String, trainingBytes: Int)?

    /// The summary of `definition` at `batchSize`, with `device`'s training memory when it says.
    public init(definition: ModelDefinition, batchSize: Int, device: ComputeDevice) {
        self.init(definition: definition, batchSize: batchSize)
        if let bytes = device.plannedBytes(definition, maxBatch: batchSize) {
            // "cpu (8 threads)" -> "cpu": the memory does not depend on the settings.
            backendMemory = (String(device.name.prefix { $0 != " " }), bytes)
        }
    }

    public init(definition: ModelDefinition, batchSize: Int) {
        self.definition = definition
        self.batchSize = batchSize
        let shapes = definition.activationShapes
        rows = definition.layers.enumerated().map { index, layer in
            let output = shapes[index + 1]
            let parameters = layer.parameterShapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
            let positions = output.count == 3 ? output[1] * output[2] : 1
            let multAdds: Int, perImage: Int
            switch layer {
            case .conv2d(_, let inChannels, let outChannels, let k, _, _):
                multAdds = parameters * batchSize * positions
                perImage = outChannels * inChannels * k * k * positions
            case .linear(_, let inFeatures, let outFeatures):
                multAdds = parameters * batchSize
                perImage = inFeatures * outFeatures
            default:
                multAdds = parameters * batchSize
                perImage = 0
            }
            return Row(typeName: layer.typeName, moduleName: layer.name, label: "\(layer.typeName): 1-\(index + 1)",
                       outputShape: [batchSize] + output, parameters: parameters, trainableParameters: parameters,
                       multAdds: multAdds, multiplyAddsPerImage: perImage,
                       outputBytes: 4 * batchSize * output.reduce(1, *))
        }
    }

    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    public var trainableParameters: Int { rows.reduce(0) { $0 + $1.trainableParameters } }
    public var nonTrainableParameters: Int { totalParameters - trainableParameters }
    /// torchinfo's "Total mult-adds", for the whole batch.
    public var totalMultAdds: Int { rows.reduce(0) { $0 + $1.multAdds } }
    /// Weight products per image for one forward pass (416,520 for LeNet).
    public var multiplyAddsPerImage: Int { rows.reduce(0) { $0 + $1.multiplyAddsPerImage } }
    public var inputBytes: Int { 4 * batchSize * definition.inputShape.reduce(1, *) }
    public var forwardBackwardBytes: Int { rows.filter { $0.parameters > 0 }.reduce(0) { $0 + 2 * $1.outputBytes } }
    public var parameterBytes: Int { 4 * totalParameters }
    public var estimatedTotalBytes: Int { inputBytes + forwardBackwardBytes + parameterBytes }

    /// The table as torchinfo prints it (90 columns), followed by the per-image count.
    public var text: String {
        let divider = String(repeating: "=", count: 90)
        func row(_ name: String, _ shape: String, _ params: String) -> String {
            let line = pad(name, 40) + " " + pad(shape, 25) + " " + pad(params, 25)
            return String(line[..<(line.lastIndex { $0 != " " }.map(line.index(after:)) ?? line.startIndex)])
        }
        var lines = [divider, row("Layer (type:depth-idx)", "Output Shape", "Param #"), divider]
        lines.append(row(modelName, Self.shape(outputShape), "--"))
        for r in rows {
            lines.append(row("├─" + r.label, Self.shape(r.outputShape), r.parameters > 0 ? Self.grouped(r.parameters) : "--"))
        }
        lines += [divider,
                  "Total params: \(Self.grouped(totalParameters))",
                  "Trainable params: \(Self.grouped(trainableParameters))",
                  "Non-trainable params: \(Self.grouped(nonTrainableParameters))",
                  "Total mult-adds\(Self.scaled(totalMultAdds, bytes: false))",
                  divider,
                  "Input size (MB): \(Self.megabytes(inputBytes))",
                  "Forward/backward pass size (MB): \(Self.megabytes(forwardBackwardBytes))",
                  "Params size (MB): \(Self.megabytes(parameterBytes))",
                  "Estimated Total Size (MB): \(Self.megabytes(estimatedTotalBytes))",
                  divider]
        if let backendMemory {
            lines += ["Training memory of lenet's \(backendMemory.device) backend (MB): \(Self.megabytes(backendMemory.trainingBytes))",
                      divider]
        }
        lines.append("Multiply-adds per image, forward (weights only): \(Self.grouped(multiplyAddsPerImage))")
        return lines.joined(separator: "\n") + "\n"
    }

    /// "[32, 6, 28, 28]"
    public static func shape(_ dims: [Int]) -> String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    /// 61706 -> "61,706"
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// torchinfo's automatic units: " (M): 13.54", or ": 512" below a thousand.
    static func scaled(_ value: Int, bytes: Bool) -> String {
        let v = Double(value)
        let (unit, scaled): (String, Double) =
            v >= 1e12 ? ("T", v / 1e12) : v >= 1e9 ? ("G", v / 1e9) : v >= 1e6 ? ("M", v / 1e6) : v >= 1e3 ? ("K", v / 1e3) : ("", v)
        let units = unit.isEmpty ? "" : " (\(unit)\(bytes ? "B" : ""))"
        return units + ": " + number(scaled)
    }

    static func megabytes(_ bytes: Int) -> String { number(Double(bytes) / 1e6) }

    /// Whole numbers with thousands separators, others with two decimals.
    static func number(_ value: Double) -> String {
        if value == value.rounded() { return grouped(Int(value)) }
        let cents = Int((value * 100).rounded())
        return grouped(cents / 100) + String(format: ".%02d", abs(cents % 100))
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
