@testable import LeNetKit
import Testing

/// The torchinfo-style model summary: shapes, parameter counts, mult-adds, memory.
@Suite struct SummaryTests {
    @Test func lenetRowsShapesAndParameters() {
        let summary = ModelSummary(definition: .lenet(.lenet), batchSize: 32)
        #expect(summary.rows.map(\.label) == [
            "Conv2d: 1-1", "ReLU: 1-2", "MaxPool2d: 1-3", "Conv2d: 1-4", "ReLU: 1-5", "MaxPool2d: 1-6",
            "Flatten: 1-7", "Linear: 1-8", "ReLU: 1-9", "Linear: 1-10", "ReLU: 1-11", "Linear: 1-12",
        ])
        #expect(summary.rows.map(\.outputShape) == [
            [32, 6, 28, 28], [32, 6, 28, 28], [32, 6, 14, 14], [32, 16, 10, 10], [32, 16, 10, 10], [32, 16, 5, 5],
            [32, 400], [32, 120], [32, 120], [32, 84], [32, 84], [32, 10],
        ])
        #expect(summary.rows.map(\.parameters) == [156, 0, 0, 2416, 0, 0, 0, 48120, 0, 10164, 0, 850])
        #expect(summary.totalParameters == 61_706)
        #expect(summary.trainableParameters == 61_706)
        #expect(summary.nonTrainableParameters == 0)
        #expect(summary.outputShape == [32, 10])
    }

    /// 416,520 weight products per image: conv1 117,600, conv2 240,000, the three fc 58,920.
    @Test func lenetMultiplyAddsPerImage() {
        let summary = ModelSummary(definition: .lenet(.lenet), batchSize: 32)
        let perLayer = Dictionary(uniqueKeysWithValues: summary.rows.compactMap { row in row.moduleName.map { ($0, row.multiplyAddsPerImage) } })
        #expect(perLayer["conv1"] == 117_600)
        #expect(perLayer["conv2"] == 240_000)
        #expect(perLayer["fc1"]! + perLayer["fc2"]! + perLayer["fc3"]! == 58_920)
        #expect(summary.multiplyAddsPerImage == 416_520)
        // The BatchNorm variant multiplies by the same weights.
        #expect(ModelSummary(definition: .lenet(.lenetBN), batchSize: 32).multiplyAddsPerImage == 416_520)
    }

    /// torchinfo's figures: mult-adds count weights and biases per output position and image;
    /// forward/backward is twice the outputs of layers with parameters; MB = 10^6 bytes.
    @Test func lenetTotalsAsTorchinfoPrintsThem() {
        let summary = ModelSummary(definition: .lenet(.lenet), batchSize: 32)
        #expect(summary.totalMultAdds == 32 * (156 * 784 + 2416 * 100 + 48120 + 10164 + 850))
        #expect(summary.inputBytes == 100_352)
        #expect(summary.forwardBackwardBytes == 2 * 4 * 32 * (6 * 784 + 16 * 100 + 120 + 84 + 10))
        #expect(summary.parameterBytes == 246_824)
        let text = summary.text
        for line in [
            "Total params: 61,706", "Trainable params: 61,706", "Non-trainable params: 0",
            "Total mult-adds (M): 13.54", "Input size (MB): 0.10", "Forward/backward pass size (MB): 1.67",
            "Params size (MB): 0.25", "Estimated Total Size (MB): 2.02",
            "Multiply-adds per image, forward (weights only): 416,520",
        ] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "missing line: \(line)")
        }
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == String(repeating: "=", count: 90))
        #expect(lines[1] == "Layer (type:depth-idx)                   Output Shape              Param #")
        #expect(lines[3] == "LeNet                                    [32, 10]                  --")
        #expect(lines[4] == "├─Conv2d: 1-1                            [32, 6, 28, 28]           156")
        #expect(lines.contains("├─Linear: 1-8                            [32, 120]                 48,120"))
    }

    @Test func lenetBNCountsBatchNormParametersAsTrainable() {
        let summary = ModelSummary(definition: .lenet(.lenetBN), batchSize: 32)
        #expect(summary.totalParameters == 61_750)
        #expect(summary.rows.filter { $0.typeName == "BatchNorm2d" }.map(\.parameters) == [12, 32])
        #expect(summary.trainableParameters == 61_750)
        #expect(summary.nonTrainableParameters == 0)
        #expect(summary.rows.first { $0.typeName == "BatchNorm2d" }?.outputShape == [32, 6, 28, 28])
        #expect(summary.rows.first { $0.typeName == "Dropout" }?.outputShape == [32, 120])
        #expect(summary.rows.count == 15)
        let text = summary.text
        for line in [
            "Total params: 61,750", "Trainable params: 61,750", "Non-trainable params: 0",
            "Total mult-adds (M): 13.54", "Forward/backward pass size (MB): 3.28", "Params size (MB): 0.25",
            "Estimated Total Size (MB): 3.63",
        ] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "missing line: \(line)")
        }
        #expect(text.contains("├─BatchNorm2d: 1-2                       [32, 6, 28, 28]           12"))
        // The top row names the variant, not the plain LeNet.
        #expect(text.split(separator: "\n")[3] == "LeNet-BN                                 [32, 10]                  --")
    }

    @Test func batchSizeScalesShapesAndUnits() {
        let summary = ModelSummary(definition: .lenet(.lenet), batchSize: 1)
        #expect(summary.rows[0].outputShape == [1, 6, 28, 28])
        #expect(summary.totalMultAdds == 423_038)
        #expect(summary.text.contains("Total mult-adds (K): 423.04\n"))
        #expect(summary.text.contains("Input size (MB): 0.00\n"))
        #expect(ModelSummary(definition: .lenet(.lenet), batchSize: 1000).text.contains("Total mult-adds (G): 423.04\n") == false)
        #expect(ModelSummary(definition: .lenet(.lenet), batchSize: 1000).text.contains("Total mult-adds (M): 423.04\n"))
    }

    @Test func groupedNumbers() {
        #expect(ModelSummary.grouped(0) == "0")
        #expect(ModelSummary.grouped(999) == "999")
        #expect(ModelSummary.grouped(61_706) == "61,706")
        #expect(ModelSummary.grouped(1_234_567) == "1,234,567")
        #expect(ModelSummary.grouped(-1000) == "-1,000")
        #expect(ModelSummary.shape([32, 6, 28, 28]) == "[32, 6, 28, 28]")
    }
}
