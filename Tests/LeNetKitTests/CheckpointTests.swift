import Foundation
@testable import LeNetKit
import Testing

/// Checkpoints: PyTorch-written files load and give PyTorch's logits; lenet's files round-trip
/// bit for bit; every kind of broken file is refused with its own one-line message.
/// Fixtures from Scripts/fixtures/make_checkpoint_fixtures.py (see Fixtures/README.md).
@Suite struct CheckpointTests {
    static let expected = Result { try SafeTensorsFile(contentsOf: fixturesDirectory + "/pytorch_checkpoint_logits.safetensors") }

    /// Logits of the fixture's 4 test images through a network holding `checkpoint`.
    static func logits(_ checkpoint: Checkpoint, input: [Float]) throws -> [Float] {
        let network = try checkpoint.makeNetwork(device: .cpu(threads: 1), maxBatch: 4)
        var logits = [Float](repeating: 0, count: 4 * 10)
        network.infer(input, count: 4, logits: &logits)
        return logits
    }

    @Test(arguments: [("pytorch_lenet", ModelVariant.lenet), ("pytorch_lenet_bn", .lenetBN)])
    func pytorchFileLoadsAndGivesItsLogits(file: String, variant: ModelVariant) throws {
        let golden = try Self.expected.get()
        let checkpoint = try Checkpoint(contentsOf: fixturesDirectory + "/\(file).safetensors")
        #expect(checkpoint.variant == variant)  // inferred from the names: PyTorch writes no metadata
        #expect(checkpoint.info == CheckpointInfo())
        let input = try golden.floats("input", shape: [4, 1, 28, 28])
        let want = try golden.floats("\(file.dropFirst("pytorch_".count)).logits", shape: [4, 10])
        let got = try Self.logits(checkpoint, input: input)
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "largest |lenet - PyTorch| logit difference \(worst)")
        if variant == .lenetBN {
            let store = ParameterStore(definition: .lenet(.lenetBN))
            try checkpoint.restore(into: store)
            #expect(store.batchesTracked == ["bn1": 3, "bn2": 3])
        }
    }

    @Test func saveAndLoadRoundTripBitExact() throws {
        let pytorch = try Checkpoint(contentsOf: fixturesDirectory + "/pytorch_lenet_bn.safetensors")
        let store = ParameterStore(definition: .lenet(.lenetBN))
        try pytorch.restore(into: store)
        let info = CheckpointInfo(epoch: 3, seed: 12_345_678_901, testAccuracy: 0.9871)
        let saved = try Checkpoint(store: store, variant: .lenetBN, info: info)
        let path = try DataFixtures.temporaryDirectory() + "/model.safetensors"
        try saved.write(to: path)

        let loaded = try Checkpoint(contentsOf: path)
        #expect(loaded.variant == .lenetBN)
        #expect(loaded.info == info)
        let sameAsSaved = loaded.tensors == saved.tensors, sameAsPyTorch = loaded.tensors == pytorch.tensors
        #expect(sameAsSaved, "tensors changed in the round trip")  // raw bytes, so bit-exact
        #expect(sameAsPyTorch, "tensors differ from the PyTorch file they came from")
        #expect(loaded.metadata["format"] == "lenet-checkpoint" && loaded.metadata["format_version"] == "1")
        let restored = ParameterStore(definition: .lenet(.lenetBN))
        try loaded.restore(into: restored)
        for name in store.stateDictNames where !name.hasSuffix("num_batches_tracked") {
            let a = store.values(of: name)?.map(\.bitPattern), b = restored.values(of: name)?.map(\.bitPattern)
            #expect(a != nil && a == b, "\(name) differs after the round trip")
        }
        #expect(restored.batchesTracked == store.batchesTracked)
        // Writing what was read gives the same bytes.
        let sameBytes = try loaded.safeTensorsFile.serialized() == FileIOTestSupport.bytes(path)
        #expect(sameBytes, "rewriting the loaded checkpoint gives other bytes")
    }

    @Test func lenetFileHasPyTorchNamesOrderShapesAndDtypes() throws {
        let store = ParameterStore(definition: .lenet(.lenetBN))
        let file = try Checkpoint(store: store, variant: .lenetBN).safeTensorsFile
        let names = ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                     "bn1.num_batches_tracked", "conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias",
                     "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
                     "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
        #expect(store.stateDictNames == names)
        #expect(Set(file.tensors.keys) == Set(names))
        #expect(file.tensors["bn1.num_batches_tracked"]?.dtype == .i64)
        #expect(file.tensors["bn1.num_batches_tracked"]?.shape == [])
        #expect(file.tensors["conv2.weight"]?.shape == [16, 6, 5, 5])
        #expect(file.tensors["fc1.weight"]?.shape == [120, 400])
        #expect(file.tensors.filter { !$0.key.hasSuffix("num_batches_tracked") }.allSatisfy { $0.value.dtype == .f32 })
        #expect(file.metadata["variant"] == "lenet-bn")
        let plain = try Checkpoint(store: ParameterStore(definition: .lenet()), variant: .lenet).safeTensorsFile
        #expect(plain.tensors.count == 10)
    }

    /// One malformed file per case; each must be refused with an error naming the file and
    /// saying what is wrong, and no two cases may share a message.
    @Test func malformedCheckpointsAreRejectedEachWithItsOwnMessage() throws {
        let valid = try Checkpoint(contentsOf: fixturesDirectory + "/pytorch_lenet.safetensors").safeTensorsFile
        let validBytes = try valid.serialized()
        func edited(_ change: (inout [String: SafeTensor], inout [String: String]) throws -> Void) throws -> [UInt8] {
            var tensors = valid.tensors, metadata = valid.metadata
            try change(&tensors, &metadata)
            return try SafeTensorsFile(tensors: tensors, metadata: metadata).serialized()
        }
        var headerPastEnd = validBytes
        let claimed = UInt64(validBytes.count)  // the header cannot be as long as the whole file
        for i in 0..<8 { headerPastEnd[i] = UInt8((claimed >> (8 * UInt64(i))) & 0xFF) }

        let cases: [(name: String, bytes: [UInt8], expected: String)] = [
            ("wrong-name", try edited { t, _ in t["fc3.b"] = t.removeValue(forKey: "fc3.bias") },
             "tensor name \"fc3.b\" is not a lenet state_dict name; \"fc3.bias\" is missing"),
            ("missing", try edited { t, _ in t["fc2.weight"] = nil }, "missing tensor \"fc2.weight\""),
            ("extra", try edited { t, _ in t["fc4.weight"] = try SafeTensor(floats: [1, 2], shape: [2]) },
             "unexpected tensor \"fc4.weight\""),
            ("wrong-shape", try edited { t, _ in t["conv1.weight"] = try SafeTensor(floats: .init(repeating: 0, count: 54), shape: [6, 1, 3, 3]) },
             "tensor \"conv1.weight\" has shape [6, 1, 3, 3], expected [6, 1, 5, 5]"),
            ("wrong-dtype", try edited { t, _ in t["conv1.bias"] = try SafeTensor(doubles: .init(repeating: 0, count: 6), shape: [6]) },
             "tensor \"conv1.bias\" is F64, expected F32"),
            ("bn-count-dtype", try edited { t, m in
                let bn = try SafeTensorsFile(contentsOf: fixturesDirectory + "/pytorch_lenet_bn.safetensors").tensors
                t = bn
                t["bn2.num_batches_tracked"] = try SafeTensor(floats: [3], shape: [])
                m["variant"] = "lenet-bn"
            }, "tensor \"bn2.num_batches_tracked\" is F32, expected I64"),
            ("not-finite", try edited { t, _ in t["fc3.bias"] = try SafeTensor(floats: [0, 0, .nan, 0, 0, 0, 0, 0, 0, 0], shape: [10]) },
             "tensor \"fc3.bias\" holds nan at index 2"),
            ("unknown-variant", try edited { _, m in m["variant"] = "alexnet" }, "metadata variant \"alexnet\" is not a known model"),
            ("variant-mismatch", try edited { _, m in m["variant"] = "lenet-bn" }, "missing tensor \"bn1.weight\""),
            ("future-version", try edited { _, m in m["format"] = "lenet-checkpoint"; m["format_version"] = "2" },
             "checkpoint format_version 2 is not supported"),
            ("bad-epoch", try edited { _, m in m["epoch"] = "three" }, "metadata epoch \"three\" is not a valid Int"),
            // Names and metadata may hold line breaks; messages stay one line (found while fuzzing).
            ("name-with-line-break", try edited { t, _ in t["fc3.bias\nx"] = t.removeValue(forKey: "fc3.bias") },
             "tensor name \"fc3.bias x\" is not a lenet state_dict name"),
            ("metadata-with-line-break", try edited { _, m in m["epoch"] = "3\n\n4" }, "metadata epoch \"3 4\" is not a valid Int"),
            ("header-past-end", headerPastEnd, "runs past the end of the file"),
            ("truncated", Array(validBytes.dropLast(100)), "is past the end of the data buffer"),
            ("empty", [], "shorter than the 8-byte header length field"),
            ("not-json", Array([8, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\":[1".utf8) + [0x20]), "header is not valid JSON"),
        ]
        let directory = try DataFixtures.temporaryDirectory()
        var messages: [String: String] = [:]
        for item in cases {
            let path = "\(directory)/\(item.name).safetensors"
            try Data(item.bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Checkpoint(contentsOf: path)
                Issue.record("\(item.name): accepted")
            } catch {
                let text = String(describing: error)
                #expect(text.hasPrefix(path + ": "), "\(item.name): message does not start with the file: \(text)")
                #expect(text.contains(item.expected), "\(item.name): \(text)")
                #expect(!text.contains("\n"), "\(item.name): more than one line")
                messages[item.name] = text.replacingOccurrences(of: path, with: "FILE")
            }
        }
        #expect(Set(messages.values).count == cases.count, "\(messages)")
        #expect(throws: (any Error).self) { try Checkpoint(contentsOf: directory + "/no-such-file.safetensors") }
    }

    @Test func variantIsInferredFromNames() {
        let bn = Set(Checkpoint.expectedTensors(.lenetBN).map(\.name))
        let plain = Set(Checkpoint.expectedTensors(.lenet).map(\.name))
        #expect(Checkpoint.inferVariant(names: bn) == .lenetBN)
        #expect(Checkpoint.inferVariant(names: plain) == .lenet)
        #expect(Checkpoint.inferVariant(names: plain.union(["bn1.weight"])) == .lenet)
        #expect(Checkpoint.inferVariant(names: bn.subtracting(["bn2.running_var"])) == .lenetBN)
    }
}

enum FileIOTestSupport {
    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
}
