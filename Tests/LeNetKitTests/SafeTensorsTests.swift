import Foundation
@testable import LeNetKit
import Testing

/// Golden files written by Scripts/fixtures/make_fixtures.py, found next to this source file
/// (`#filePath`), so the tests need no resource bundle.
enum SafeTensorsFixtures {
    static func path(_ name: String, sourceFile: String = #filePath) -> String {
        let directory = sourceFile.split(separator: "/", omittingEmptySubsequences: false).dropLast()
            .joined(separator: "/")
        return directory + "/Fixtures/" + name
    }
}

/// A file from a header string and data bytes, with the header length field set.
private func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    safetensorsBytes(headerBytes: Array(header.utf8), data: data, declaredLength: declaredLength)
}

private func safetensorsBytes(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let length = declaredLength ?? UInt64(headerBytes.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + headerBytes + data
}

/// The message a malformed file is rejected with.
private func rejection(_ bytes: [UInt8]) -> String? {
    do {
        _ = try SafeTensorsFile(bytes: bytes, source: "bad.safetensors")
        return nil
    } catch let error as SafeTensorsError {
        #expect(error.file == "bad.safetensors")
        #expect(error.description.hasPrefix("bad.safetensors: "))
        #expect(!error.message.contains("\n"))
        return error.message
    } catch {
        return "unexpected error type: \(error)"
    }
}

private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

@Suite struct SafeTensorsTests {
    // MARK: Round trips

    @Test func roundTripIsBitExact() throws {
        let floats: [Float] = [0, -0.0, 1, -1.5, .infinity, -.infinity, .nan, Float(bitPattern: 0x7FC0_1234),
                               .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1, 3.14159265]
        let doubles: [Double] = [0.1, -.zero, .nan, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 2]
        let int64s: [Int64] = [.min, -1, 0, 1, .max, 1 << 40]
        let int32s: [Int32] = [.min, -7, 0, .max]
        let uint8s: [UInt8] = [0, 1, 127, 128, 255]
        var file = SafeTensorsFile(tensors: [
            "w": try SafeTensor(floats: floats, shape: [3, 4]),
            "d": try SafeTensor(doubles: doubles, shape: [2, 3]),
            "count": try SafeTensor(int64s: [42], shape: []),
            "i64": try SafeTensor(int64s: int64s, shape: [6]),
            "i32": try SafeTensor(int32s: int32s, shape: [2, 2]),
            "u8": try SafeTensor(uint8s: uint8s, shape: [5]),
            "empty": try SafeTensor(floats: [], shape: [0, 7]),
            "raw.f16": try SafeTensor(dtype: .f16, shape: [2], data: [0x00, 0x3C, 0x00, 0xC0]),
            "näme \"with\" \\ / \n\t\u{01}": try SafeTensor(floats: [5], shape: [1]),
        ], metadata: ["epoch": "3", "variant": "lenet-bn", "quote\"d": "é\n\u{7F}", "empty": ""])
        let bytes = try file.serialized()
        let back = try SafeTensorsFile(bytes: bytes, source: "round trip")
        #expect(back == file)
        #expect(back.metadata == file.metadata)
        #expect(try back.serialized() == bytes)
        #expect(bits(try back.tensor("w").floats()) == bits(floats))
        #expect(try back.tensor("d").doubles().map(\.bitPattern) == doubles.map(\.bitPattern))
        #expect(try back.tensor("i64").int64s() == int64s)
        #expect(try back.int64s("count", shape: []) == [42])
        #expect(try back.tensor("i32").int32s() == int32s)
        #expect(try back.tensor("u8").uint8s() == uint8s)
        #expect(try back.tensor("empty").elementCount == 0)
        #expect(try back.tensor("empty").shape == [0, 7])
        #expect(try back.tensor("raw.f16").data == [0x00, 0x3C, 0x00, 0xC0])
        // The data starts at an 8-byte boundary, as in Python's files.
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLength) % 8 == 0)
        #expect(bytes[8 + headerLength - 1] == UInt8(ascii: " ") || bytes[8 + headerLength - 1] == UInt8(ascii: "}"))

        file.tensors["w"] = nil
        #expect(try SafeTensorsFile(bytes: try file.serialized(), source: "x").tensors.count == 8)
    }

    @Test func serializationIsDeterministicAndLaidOutLikePython() throws {
        let file = SafeTensorsFile(tensors: [
            "b": try SafeTensor(floats: [1], shape: [1]),
            "a": try SafeTensor(floats: [2], shape: [1]),
            "n": try SafeTensor(int64s: [3], shape: []),
            "m": try SafeTensor(uint8s: [4], shape: [1]),
        ])
        let bytes = try file.serialized()
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        // Descending dtype (I64 before F32 before U8), then name; compact JSON; no metadata.
        #expect(header == #"{"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},"m":{"dtype":"U8","shape":[1],"data_offsets":[16,17]}}"#)  // 200 bytes: no padding needed
        #expect(try file.serialized() == bytes)
    }

    @Test func tensorInitialisersCheckCounts() throws {
        #expect(throws: SafeTensorsError.self) { try SafeTensor(floats: [1, 2, 3], shape: [2, 2]) }
        #expect(throws: SafeTensorsError.self) { try SafeTensor(int64s: [1], shape: [-1]) }
        #expect(throws: SafeTensorsError.self) { try SafeTensor(dtype: .f32, shape: [2], data: [0, 0, 0]) }
        #expect(throws: SafeTensorsError.self) { try SafeTensor(floats: [], shape: [Int.max, 4]) }
        let scalar = try SafeTensor(floats: [2.5], shape: [])
        #expect(scalar.elementCount == 1)
        #expect(throws: SafeTensorsError.self) { try scalar.int64s() }
        let file = SafeTensorsFile(tensors: ["__metadata__": scalar])
        #expect(throws: SafeTensorsError.self) { try file.serialized() }
    }

    // MARK: Files written by PyTorch

    @Test func readsEveryDTypeFromPythonAndWritesTheSameBytes() throws {
        let path = SafeTensorsFixtures.path("formats.safetensors")
        let file = try SafeTensorsFile(contentsOf: path)
        #expect(file.source == path)
        #expect(file.metadata == ["note": "tab\there \"quoted\" é"])
        #expect(file.tensors.count == 8)
        let f32 = try file.floats("a.f32", shape: [2, 3])
        #expect(bits(f32) == bits([1.5, -0.0, .infinity, .leastNonzeroMagnitude, -3.25, .greatestFiniteMagnitude]))
        #expect(try file.tensor("b.f64").doubles() == [0.1, -2.5])
        #expect(try file.int64s("c.i64", shape: [3]) == [-1, 1 << 40, .min])
        #expect(try file.tensor("d.i32").int32s() == [-7, 0, .max, .min])
        #expect(try file.tensor("e.u8").uint8s() == [0, 1, 128, 255])
        #expect(try file.floats("scalar", shape: []) == [42])
        #expect(try file.tensor("empty").shape == [0, 3])
        #expect(try file.floats("name \"quoted\"\\/é\n") == [7])
        // The writer reproduces safetensors.torch.save_file's output byte for byte.
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(try file.serialized() == original)
    }

    @Test func readsThePyTorchStepFixtures() throws {
        let parameters: [(String, [Int])] = [
            ("conv1.weight", [6, 1, 5, 5]), ("conv1.bias", [6]), ("conv2.weight", [16, 6, 5, 5]), ("conv2.bias", [16]),
            ("fc1.weight", [120, 400]), ("fc1.bias", [120]), ("fc2.weight", [84, 120]), ("fc2.bias", [84]),
            ("fc3.weight", [10, 84]), ("fc3.bias", [10]),
        ]
        for (name, batchNorm) in [("lenet_step.safetensors", false), ("lenet_bn_step.safetensors", true)] {
            let path = SafeTensorsFixtures.path(name)
            let file = try SafeTensorsFile(contentsOf: path)
            var all = parameters
            if batchNorm {
                all += [("bn1.weight", [6]), ("bn1.bias", [6]), ("bn2.weight", [16]), ("bn2.bias", [16])]
            }
            for (parameter, shape) in all {
                let before = try file.floats(parameter, shape: shape)
                let gradient = try file.floats("grad." + parameter, shape: shape)
                let after = try file.floats("after_step." + parameter, shape: shape)
                // SGD: after = before - 0.01 * gradient (to float32 rounding).
                for index in before.indices {
                    #expect(abs(after[index] - (before[index] - 0.01 * gradient[index])) <= 1e-6)
                }
            }
            #expect(try file.int64s("target", shape: [8]) == [7, 2, 1, 0, 4, 1, 4, 9])
            let input = try file.floats("input", shape: [8, 1, 28, 28])
            #expect(input.allSatisfy { $0 >= 0 && $0 <= 1 })
            let loss = try file.floats("loss", shape: [])
            #expect(loss[0] > 2.2 && loss[0] < 2.45)  // about ln 10 for a fresh network
            #expect(try file.floats("logits", shape: [8, 10]).count == 80)
            #expect(try file.floats("eval_logits", shape: [8, 10]).count == 80)
            #expect(file.metadata["generated_by"]?.contains("torch") == true)
            #expect(try file.serialized() == [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
            if batchNorm {
                #expect(file.tensors.count == 60)
                #expect(try file.int64s("bn1.num_batches_tracked", shape: []) == [0])
                #expect(try file.int64s("after_forward.bn2.num_batches_tracked", shape: []) == [1])
                #expect(try file.floats("bn2.running_var", shape: [16]) == [Float](repeating: 1, count: 16))
                #expect(try file.floats("after_forward.bn1.running_mean", shape: [6]).count == 6)
                let mask = try file.floats("dropout_mask", shape: [8, 120])
                #expect(mask.allSatisfy { $0 == 0 || $0 == 1 })
            } else {
                #expect(file.tensors.count == 35)
            }
            // Wrong names, dtypes and shapes are reported against the file.
            #expect(throws: SafeTensorsError(file: path, message: "no tensor named \"conv9.weight\"")) {
                try file.floats("conv9.weight")
            }
            #expect(throws: SafeTensorsError(file: path, message: "tensor \"target\" is I64, expected F32")) {
                try file.floats("target")
            }
            #expect(throws: SafeTensorsError(file: path, message: "tensor \"fc1.bias\" has shape [120], expected [84]")) {
                try file.floats("fc1.bias", shape: [84])
            }
        }
    }

    // MARK: Malformed files

    @Test func eachMalformedFileIsRejectedWithItsOwnMessage() throws {
        let f32x1 = #"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        let four: [UInt8] = [0, 0, 128, 63]
        let cases: [(String, [UInt8], String)] = [
            ("short file", [1, 2, 3], "file is 3 bytes, shorter than the 8-byte header length field"),
            ("empty file", [], "file is 0 bytes, shorter than the 8-byte header length field"),
            ("absurd header length", safetensorsBytes(header: "{}", declaredLength: 1 << 40),
             "header length 1099511627776 is larger than the 100000000-byte limit"),
            ("header length past the end", safetensorsBytes(header: "{}", declaredLength: 100),
             "header length 100 runs past the end of the file (10 bytes)"),
            ("not JSON", safetensorsBytes(header: #"{"a": "#), "header is not valid JSON"),
            ("trailing garbage", safetensorsBytes(header: "{} x"), "after the end of the top-level value"),
            ("invalid UTF-8", safetensorsBytes(headerBytes: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]), "string is not valid UTF-8"),
            ("deep nesting", safetensorsBytes(header: String(repeating: "[", count: 200)), "nested more than 64 levels deep"),
            ("not an object", safetensorsBytes(header: "[1, 2]"), "header is not a JSON object but a list"),
            ("entry not an object", safetensorsBytes(header: #"{"a":3}"#), "tensor \"a\": entry is a number, not an object"),
            ("missing field", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1]}}"#),
             "tensor \"a\": missing field \"data_offsets\""),
            ("unknown field", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#, data: four),
             "tensor \"a\": unknown field \"x\""),
            ("duplicate field", safetensorsBytes(header: #"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four),
             "tensor \"a\": duplicate field \"dtype\""),
            ("unknown dtype", safetensorsBytes(header: #"{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}"#, data: [0]),
             "tensor \"a\": unknown dtype \"F8\""),
            ("dtype not a string", safetensorsBytes(header: #"{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, data: four),
             "tensor \"a\": dtype is a number, not a string"),
            ("negative dimension", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: four),
             "tensor \"a\": shape must be a list of non-negative integers, got [-1]"),
            ("fractional dimension", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, data: four),
             "tensor \"a\": shape must be a list of non-negative integers, got [1.0]"),
            ("shape not a list", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, data: four),
             "tensor \"a\": shape must be a list of non-negative integers, got \"1\""),
            ("shape overflows", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: four),
             "has more elements than Int.max"),
            ("offsets not a pair", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#, data: four),
             "tensor \"a\": data_offsets must be two non-negative integers [begin, end], got [4]"),
            ("end before begin", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: four),
             "tensor \"a\": data_offsets end 0 is before begin 4"),
            ("size mismatch", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: four),
             "tensor \"a\": data_offsets [0, 4] hold 4 bytes but a F32 tensor of shape [2] needs 8"),
            ("past the end of data", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: four),
             "tensor \"a\": data_offsets end 8 is past the end of the data buffer (4 bytes)"),
            ("overlap", safetensorsBytes(header: #"{"a":\#(f32x1),"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: four + four),
             "tensor \"b\": data_offsets [2, 6] overlap tensor \"a\", which ends at 4"),
            ("hole", safetensorsBytes(header: #"{"a":\#(f32x1),"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: four + four + four),
             "data buffer has a hole: bytes 4..<8 belong to no tensor"),
            ("trailing data", safetensorsBytes(header: #"{"a":\#(f32x1)}"#, data: four + four),
             "data buffer has 4 bytes after the last tensor"),
            ("duplicate name", safetensorsBytes(header: #"{"a":\#(f32x1),"a":\#(f32x1)}"#, data: four),
             "duplicate tensor name \"a\" in header"),
            // Names may hold line breaks; the message is still one line (found while fuzzing).
            ("duplicate name with a line break", safetensorsBytes(header: #"{"a\nb":\#(f32x1),"a\nb":\#(f32x1)}"#, data: four),
             "duplicate tensor name \"a b\" in header"),
            ("metadata not an object", safetensorsBytes(header: #"{"__metadata__":["x"]}"#),
             "\"__metadata__\" is not an object of strings but a list"),
            ("metadata value not a string", safetensorsBytes(header: #"{"__metadata__":{"epoch":3}}"#),
             "\"__metadata__\" value for key \"epoch\" is a number, not a string"),
            ("duplicate metadata key", safetensorsBytes(header: #"{"__metadata__":{"k":"1","k":"2"}}"#),
             "duplicate \"__metadata__\" key \"k\""),
            ("duplicate metadata", safetensorsBytes(header: #"{"__metadata__":{},"__metadata__":{}}"#),
             "duplicate \"__metadata__\" entry in header"),
        ]
        var messages: Set<String> = []
        for (label, bytes, expected) in cases {
            let message = rejection(bytes)
            #expect(message?.contains(expected) == true, "\(label): got \(message ?? "no error")")
            if let message { messages.insert(message) }
        }
        #expect(messages.count == cases.count, "every case has its own message")

        // And the well-formed neighbours of those cases load.
        #expect(rejection(safetensorsBytes(header: #"{"a":\#(f32x1)}"#, data: four)) == nil)
        #expect(rejection(safetensorsBytes(header: "{}    ")) == nil)
        #expect(rejection(safetensorsBytes(header: #"{"__metadata__":{"k":"v"},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#)) == nil)
    }

    @Test func truncatingARealFileIsRejected() throws {
        let original = try SafeTensorsFile(contentsOf: SafeTensorsFixtures.path("formats.safetensors")).serialized()
        for length in [0, 7, 8, 100, original.count - 1] {
            #expect(rejection(Array(original.prefix(length))) != nil, "truncated to \(length) bytes")
        }
        #expect(rejection(original + [0]) != nil)
    }

    // MARK: Files on disk

    @Test func writeIsAtomicAndLeavesNoTemporaryFile() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.safetensors"
        let first = SafeTensorsFile(tensors: ["w": try SafeTensor(floats: [1, 2, 3], shape: [3])], metadata: ["epoch": "1"])
        try first.write(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
        #expect(try SafeTensorsFile(contentsOf: path) == first)

        // Overwriting replaces the whole file.
        let second = SafeTensorsFile(tensors: ["w": try SafeTensor(floats: [4], shape: [1])], metadata: ["epoch": "2"])
        try second.write(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
        #expect(try SafeTensorsFile(contentsOf: path) == second)

        // A failed rename (the target is a non-empty directory) removes the temporary file.
        let blocked = directory + "/blocked"
        try FileManager.default.createDirectory(atPath: blocked + "/inside", withIntermediateDirectories: true)
        #expect(throws: SafeTensorsError.self) { try second.write(to: blocked) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["blocked", "model.safetensors"])

        // A missing directory is an error, not a crash, and creates nothing.
        #expect(throws: SafeTensorsError.self) { try second.write(to: directory + "/missing/model.safetensors") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["blocked", "model.safetensors"])
    }

    @Test func readingMissingOrNonRegularFilesFailsClearly() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            _ = try SafeTensorsFile(contentsOf: directory + "/nope.safetensors")
            Issue.record("a missing file loaded")
        } catch let error as SafeTensorsError {
            #expect(error.file == directory + "/nope.safetensors")
            #expect(error.message.hasPrefix("cannot open"))
        }
        do {
            _ = try SafeTensorsFile(contentsOf: directory)
            Issue.record("a directory loaded")
        } catch let error as SafeTensorsError {
            #expect(error.message == "not a regular file: it is a directory")
        }
    }
}
