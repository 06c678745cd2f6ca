import Foundation
import LeNetKit

/// safetensors bytes through `SafeTensorsFile`, then, when they parse: every tensor's
/// values, a write-and-read-back round trip (must give the same file), and the file read
/// as a `Checkpoint` and as a `TrainingState` (metadata, names, shapes, dtypes, values).
/// A complete checkpoint is 247 KB, too large to fuzz, so both are also tried with the
/// tensors the fuzzed file lacks filled in with zeros of the expected dtype and shape;
/// that reaches the checks past "missing tensor". One-line errors naming the file
/// (`SafeTensorsError`, `CheckpointError`) are the answer to bad input; a trap, a
/// sanitizer report or any other error is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let file = expectNamedError({ try SafeTensorsFile(bytes: bytes, source: source) }) else { return 0 }

    for tensor in file.tensors.values {
        precondition(tensor.data.count == tensor.elementCount * tensor.dtype.byteCount, "tensor size")
        switch tensor.dtype {
        case .f32: precondition(try! tensor.floats().count == tensor.elementCount)
        case .f64: precondition(try! tensor.doubles().count == tensor.elementCount)
        case .i64: precondition(try! tensor.int64s().count == tensor.elementCount)
        case .i32: precondition(try! tensor.int32s().count == tensor.elementCount)
        case .u8: precondition(try! tensor.uint8s().count == tensor.elementCount)
        default: break
        }
    }
    guard let written = expectNamedError({ try file.serialized() }),
          let again = expectNamedError({ try SafeTensorsFile(bytes: written, source: source) }) else {
        preconditionFailure("a file that was read could not be written and read back")
    }
    precondition(again == file, "written and read back, the file differs")

    readAsCheckpoint(file)
    readAsTrainingState(file)
    let variant = modelVariant(named: file.metadata["variant"]) ?? Checkpoint.inferVariant(names: Set(file.tensors.keys))
    readAsCheckpoint(completed(file, with: Checkpoint.expectedTensors(variant)))
    if file.metadata["format"] == TrainingState.format, let model = modelVariant(named: file.metadata["model"]) {
        let modelTensors: [TensorSpec] = Checkpoint.expectedTensors(model).map { ("model." + $0.name, $0.dtype, $0.shape) }
        let velocity: [TensorSpec] = ParameterStore(definition: .lenet(model)).parameterSlots.map {
            ("optimizer.velocity." + $0.name, .f32, $0.shape)
        }
        readAsTrainingState(completed(file, with: modelTensors + velocity))
    }
    return 0
}

let source = "input.safetensors"

func modelVariant(named name: String?) -> ModelVariant? { name.flatMap(ModelVariant.init(rawValue:)) }

typealias TensorSpec = (name: String, dtype: SafeTensorsDType, shape: [Int])

/// The file with each of `expected` that it lacks added as zeros.
func completed(_ file: SafeTensorsFile, with expected: [TensorSpec]) -> SafeTensorsFile {
    var file = file
    for (name, dtype, shape) in expected where file.tensors[name] == nil {
        let count = shape.reduce(1, *) * dtype.byteCount
        file.tensors[name] = try! SafeTensor(dtype: dtype, shape: shape, data: [UInt8](repeating: 0, count: count))
    }
    return file
}

func readAsCheckpoint(_ file: SafeTensorsFile) {
    guard let checkpoint = expectNamedError({ try Checkpoint(file: file) }) else { return }
    let store = ParameterStore(definition: checkpoint.definition)
    _ = expectNamedError { try checkpoint.restore(into: store) }
    _ = checkpoint.safeTensorsFile
}

func readAsTrainingState(_ file: SafeTensorsFile) {
    guard let state = expectNamedError({ try TrainingState(file: file) }) else { return }
    precondition(state.trainOrder.count == state.trainCount, "train order")
    _ = expectNamedError { try state.safeTensorsFile }
}

/// LENET_FUZZ_DEBUG=1 prints every error (to see how far a seed gets).
let debug = getenv("LENET_FUZZ_DEBUG").map { String(cString: $0) == "1" } ?? false

/// The value, or nil after an error that names the file; any other error is a bug.
func expectNamedError<T>(_ body: () throws -> T) -> T? {
    do {
        return try body()
    } catch {
        if debug { print("error: \(error)") }
        let file: String, message: String
        switch error {
        case let error as SafeTensorsError: (file, message) = (error.file, error.message)
        case let error as CheckpointError: (file, message) = (error.file, error.message)
        default: preconditionFailure("not a SafeTensorsError or CheckpointError: \(error)")
        }
        precondition(file.hasPrefix(source) && !message.isEmpty, "error does not name the file: \(error)")
        precondition(!message.contains(where: \.isNewline), "error is not one line: \(error)")
        return nil
    }
}
