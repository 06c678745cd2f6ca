// A strict reader and writer for the safetensors format
// (https://github.com/huggingface/safetensors), the format PyTorch checkpoints
// are exchanged in:
//
//   [8 bytes]  N, the header length, unsigned 64-bit little-endian
//   [N bytes]  a UTF-8 JSON object:
//              {"__metadata__": {"key": "value", ...},            (optional)
//               "name": {"dtype": "F32", "shape": [6, 1, 5, 5],
//                        "data_offsets": [begin, end]}, ...}
//              padded with trailing spaces
//   [rest]     the data buffer; offsets are relative to its start, every
//              tensor's bytes are little-endian and row-major, and the tensors
//              cover the buffer exactly, with no holes and no overlaps.
//
// The reader rejects anything the reference (Rust) implementation rejects, and
// a little more (duplicate names, unknown fields), each with its own message.
// The writer produces byte-for-byte what `safetensors.torch.save_file` writes
// for the same tensors: compact JSON, tensors laid out by descending dtype
// (the Rust `Dtype` order) then by name, header padded with spaces so the data
// starts at an 8-byte boundary. Metadata keys are written sorted (Python's
// order is a hash map's and varies from run to run).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Errors

/// What is wrong with a safetensors file or tensor: the file (or source) and a
/// one-line message.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The path (or source description) of the file; empty for errors about a
    /// tensor value that is not tied to a file.
    public let file: String
    /// One line saying what is wrong.
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        // One line, whatever the file's tensor names and metadata hold.
        self.message = message.oneLine
    }

    /// For `LocalFile`: an I/O failure on `file`.
    static let forFile: LocalFile.Failure = { SafeTensorsError(file: $0, message: $1) }

    public var description: String {
        file.isEmpty ? message : "\(file): \(message)"
    }
}

// MARK: - Data types

/// The element types of the safetensors format. Every type can be read and
/// written as raw bytes; typed accessors exist for F32, F64, I64, I32 and U8.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .bool, .u8, .i8: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// Position in the Rust implementation's `Dtype` enum, whose derived order
    /// decides the layout of a written file (descending rank, then name).
    var layoutRank: Int {
        switch self {
        case .bool: return 0
        case .u8: return 4
        case .i8: return 5
        case .i16: return 9
        case .u16: return 10
        case .f16: return 11
        case .bf16: return 12
        case .i32: return 13
        case .u32: return 14
        case .f32: return 15
        case .f64: return 17
        case .i64: return 18
        case .u64: return 19
        }
    }
}

// MARK: - One tensor

/// One tensor: dtype, shape and its little-endian, row-major raw bytes.
/// The initialisers guarantee `data.count == elementCount * dtype.byteCount`.
public struct SafeTensor: Sendable, Equatable {
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Little-endian raw bytes, row-major.
    public let data: [UInt8]
    /// The product of `shape` (1 for a scalar, shape []).
    public let elementCount: Int

    /// A tensor from raw little-endian bytes; the byte count must match shape and dtype.
    public init(dtype: SafeTensorsDType, shape: [Int], data: [UInt8]) throws {
        let count = try SafeTensor.elementCount(of: shape)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
        guard !overflow, bytes == data.count else {
            throw SafeTensorsError(
                file: "",
                message: "\(data.count) bytes do not make a \(dtype.rawValue) tensor of shape \(shape), which needs \(overflow ? "more than Int.max" : String(bytes)) bytes")
        }
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.elementCount = count
    }

    public init(floats: [Float], shape: [Int]) throws {
        try self.init(dtype: .f32, shape: shape, values: floats, count: floats.count) { $0.bitPattern }
    }

    public init(doubles: [Double], shape: [Int]) throws {
        try self.init(dtype: .f64, shape: shape, values: doubles, count: doubles.count) { $0.bitPattern }
    }

    public init(int64s: [Int64], shape: [Int]) throws {
        try self.init(dtype: .i64, shape: shape, values: int64s, count: int64s.count) { UInt64(bitPattern: $0) }
    }

    public init(int32s: [Int32], shape: [Int]) throws {
        try self.init(dtype: .i32, shape: shape, values: int32s, count: int32s.count) { UInt32(bitPattern: $0) }
    }

    public init(uint8s: [UInt8], shape: [Int]) throws {
        try self.init(dtype: .u8, shape: shape, data: uint8s)
    }

    /// The values of an F32 tensor, bit-exact.
    public func floats() throws -> [Float] {
        try decode(.f32) { Float(bitPattern: $0 as UInt32) }
    }

    /// The values of an F64 tensor, bit-exact.
    public func doubles() throws -> [Double] {
        try decode(.f64) { Double(bitPattern: $0 as UInt64) }
    }

    public func int64s() throws -> [Int64] {
        try decode(.i64) { Int64(bitPattern: $0 as UInt64) }
    }

    public func int32s() throws -> [Int32] {
        try decode(.i32) { Int32(bitPattern: $0 as UInt32) }
    }

    public func uint8s() throws -> [UInt8] {
        try checkDType(.u8)
        return data
    }

    // MARK: Internals

    /// The product of a shape's dimensions, rejecting negative sizes and overflow.
    static func elementCount(of shape: [Int]) throws -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw SafeTensorsError(file: "", message: "shape \(shape) has a negative dimension")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw SafeTensorsError(file: "", message: "shape \(shape) has more elements than Int.max")
            }
            count = product
        }
        return count
    }

    private init<Value, Bits: FixedWidthInteger & UnsignedInteger>(
        dtype: SafeTensorsDType, shape: [Int], values: [Value], count: Int, bits: (Value) -> Bits
    ) throws {
        let expected = try SafeTensor.elementCount(of: shape)
        guard expected == count else {
            throw SafeTensorsError(
                file: "",
                message: "\(count) values do not fill a \(dtype.rawValue) tensor of shape \(shape), which holds \(expected)")
        }
        let width = MemoryLayout<Bits>.size
        var bytes = [UInt8](repeating: 0, count: count * width)
        bytes.withUnsafeMutableBytes { raw in
            for index in 0..<count {
                raw.storeBytes(of: bits(values[index]).littleEndian, toByteOffset: index * width, as: Bits.self)
            }
        }
        self.dtype = dtype
        self.shape = shape
        self.data = bytes
        self.elementCount = count
    }

    private func checkDType(_ wanted: SafeTensorsDType) throws {
        guard dtype == wanted else {
            throw SafeTensorsError(
                file: "", message: "tensor of shape \(shape) is \(dtype.rawValue), not \(wanted.rawValue)")
        }
    }

    private func decode<Value, Bits: FixedWidthInteger & UnsignedInteger>(
        _ wanted: SafeTensorsDType, _ make: (Bits) -> Value
    ) throws -> [Value] {
        try checkDType(wanted)
        let width = MemoryLayout<Bits>.size
        return data.withUnsafeBytes { raw in
            (0..<elementCount).map { index in
                make(Bits(littleEndian: raw.loadUnaligned(fromByteOffset: index * width, as: Bits.self)))
            }
        }
    }
}

// MARK: - A whole file

/// A safetensors file: named tensors and string metadata.
public struct SafeTensorsFile: Sendable, Equatable {
    public var tensors: [String: SafeTensor]
    /// The `__metadata__` map (string to string).
    public var metadata: [String: String]
    /// Where this came from (a path, or a description); prefixes error messages.
    public var source: String

    /// The largest header accepted, as in the reference implementation (100 MB).
    public static let maximumHeaderLength = 100_000_000

    public init(tensors: [String: SafeTensor], metadata: [String: String] = [:], source: String = "(in memory)") {
        self.tensors = tensors
        self.metadata = metadata
        self.source = source
    }

    /// Reads and strictly validates the file at `path`.
    public init(contentsOf path: String) throws {
        let bytes = try LocalFile.readAll(path, failure: SafeTensorsError.forFile)
        try self.init(bytes: bytes, source: path)
    }

    /// Parses and strictly validates a serialized file; `source` names it in errors.
    public init(bytes: [UInt8], source: String) throws {
        func fail(_ message: String) -> SafeTensorsError {
            SafeTensorsError(file: source, message: message)
        }
        guard bytes.count >= 8 else {
            throw fail("file is \(bytes.count) bytes, shorter than the 8-byte header length field; not a safetensors file")
        }
        var headerLength: UInt64 = 0
        for index in 0..<8 {
            headerLength |= UInt64(bytes[index]) << (8 * UInt64(index))
        }
        guard headerLength <= UInt64(SafeTensorsFile.maximumHeaderLength) else {
            throw fail("header length \(headerLength) is larger than the \(SafeTensorsFile.maximumHeaderLength)-byte limit; not a safetensors file or corrupt")
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerEnd <= bytes.count else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes); truncated or not a safetensors file")
        }
        let headerBytes = bytes[8..<headerEnd]
        let value: JSONValue
        do {
            value = try JSONParser.parse(headerBytes, name: "header")
        } catch let error as JSONParser.Failure {
            throw fail("header is not valid JSON: \(error.message) at header byte \(error.offset)")
        }
        guard case .object(let entries) = value else {
            throw fail("header is not a JSON object but \(value.kindDescription)")
        }

        let dataStart = headerEnd
        let dataLength = bytes.count - dataStart
        var tensors: [String: SafeTensor] = [:]
        var metadata: [String: String] = [:]
        var sawMetadata = false
        var layout: [(name: String, begin: Int, end: Int)] = []

        for (name, entry) in entries {
            if name == "__metadata__" {
                guard !sawMetadata else { throw fail("duplicate \"__metadata__\" entry in header") }
                sawMetadata = true
                guard case .object(let pairs) = entry else {
                    throw fail("\"__metadata__\" is not an object of strings but \(entry.kindDescription)")
                }
                for (key, item) in pairs {
                    guard case .string(let text) = item else {
                        throw fail("\"__metadata__\" value for key \"\(key)\" is \(item.kindDescription), not a string")
                    }
                    guard metadata[key] == nil else {
                        throw fail("duplicate \"__metadata__\" key \"\(key)\"")
                    }
                    metadata[key] = text
                }
                continue
            }
            // Swift compares strings by canonical equivalence, so two names that differ only
            // in Unicode normalisation also count as duplicates here.
            guard tensors[name] == nil else {
                throw fail("duplicate tensor name \"\(name)\" in header")
            }
            guard case .object(let fields) = entry else {
                throw fail("tensor \"\(name)\": entry is \(entry.kindDescription), not an object with dtype, shape and data_offsets")
            }
            var dtypeValue: JSONValue?
            var shapeValue: JSONValue?
            var offsetsValue: JSONValue?
            for (field, item) in fields {
                switch field {
                case "dtype":
                    guard dtypeValue == nil else { throw fail("tensor \"\(name)\": duplicate field \"dtype\"") }
                    dtypeValue = item
                case "shape":
                    guard shapeValue == nil else { throw fail("tensor \"\(name)\": duplicate field \"shape\"") }
                    shapeValue = item
                case "data_offsets":
                    guard offsetsValue == nil else { throw fail("tensor \"\(name)\": duplicate field \"data_offsets\"") }
                    offsetsValue = item
                default:
                    throw fail("tensor \"\(name)\": unknown field \"\(field)\" (expected dtype, shape, data_offsets)")
                }
            }
            guard let dtypeValue else { throw fail("tensor \"\(name)\": missing field \"dtype\"") }
            guard let shapeValue else { throw fail("tensor \"\(name)\": missing field \"shape\"") }
            guard let offsetsValue else { throw fail("tensor \"\(name)\": missing field \"data_offsets\"") }

            guard case .string(let dtypeName) = dtypeValue else {
                throw fail("tensor \"\(name)\": dtype is \(dtypeValue.kindDescription), not a string")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail("tensor \"\(name)\": unknown dtype \"\(dtypeName)\" (known: \(known))")
            }
            guard let shape = shapeValue.nonNegativeInts else {
                throw fail("tensor \"\(name)\": shape must be a list of non-negative integers, got \(shapeValue.summary)")
            }
            guard let offsets = offsetsValue.nonNegativeInts, offsets.count == 2 else {
                throw fail("tensor \"\(name)\": data_offsets must be two non-negative integers [begin, end], got \(offsetsValue.summary)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard end >= begin else {
                throw fail("tensor \"\(name)\": data_offsets end \(end) is before begin \(begin)")
            }
            let count: Int
            do {
                count = try SafeTensor.elementCount(of: shape)
            } catch let error as SafeTensorsError {
                throw fail("tensor \"\(name)\": \(error.message)")
            }
            let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, needed == end - begin else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] hold \(end - begin) bytes but a \(dtype.rawValue) tensor of shape \(shape) needs \(overflow ? "more than Int.max" : String(needed))")
            }
            guard end <= dataLength else {
                throw fail("tensor \"\(name)\": data_offsets end \(end) is past the end of the data buffer (\(dataLength) bytes); truncated file?")
            }
            layout.append((name, begin, end))
            do {
                tensors[name] = try SafeTensor(
                    dtype: dtype, shape: shape, data: Array(bytes[(dataStart + begin)..<(dataStart + end)]))
            } catch let error as SafeTensorsError {
                throw fail("tensor \"\(name)\": \(error.message)")
            }
        }

        // The tensors must tile the data buffer exactly: sorted by offset, each
        // begins where the previous ended, the last ends at the end of the file.
        layout.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        var previous: String?
        for item in layout {
            if item.begin < position, let previous {
                throw fail("tensor \"\(item.name)\": data_offsets [\(item.begin), \(item.end)] overlap tensor \"\(previous)\", which ends at \(position)")
            }
            if item.begin > position {
                throw fail("data buffer has a hole: bytes \(position)..<\(item.begin) belong to no tensor (next is \"\(item.name)\")")
            }
            position = item.end
            previous = item.name
        }
        guard position == dataLength else {
            throw fail("data buffer has \(dataLength - position) bytes after the last tensor (bytes \(position)..<\(dataLength) belong to no tensor)")
        }
        self.tensors = tensors
        self.metadata = metadata
        self.source = source
    }

    /// The file's bytes, identical to what `safetensors.torch.save_file` writes
    /// for the same tensors and (at most one) metadata key: compact JSON header,
    /// tensors by descending dtype then name, spaces up to an 8-byte boundary.
    /// Throws only for a tensor named `__metadata__`.
    public func serialized() throws -> [UInt8] {
        if tensors["__metadata__"] != nil {
            throw SafeTensorsError(file: source, message: "a tensor cannot be named \"__metadata__\"")
        }
        let order = tensors.keys.sorted { lhs, rhs in
            let (left, right) = (tensors[lhs]?.dtype.layoutRank ?? 0, tensors[rhs]?.dtype.layoutRank ?? 0)
            if left != right { return left > right }
            return lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
        }
        var entries: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            entries.append(("__metadata__", .object(keys.map { ($0, .string(metadata[$0] ?? "")) })))
        }
        var offset = 0
        for name in order {
            guard let tensor = tensors[name] else { continue }
            let end = offset + tensor.data.count
            entries.append((name, .object([
                ("dtype", .string(tensor.dtype.rawValue)),
                ("shape", .array(tensor.shape.map { JSONValue($0) })),
                ("data_offsets", .array([JSONValue(offset), JSONValue(end)])),
            ])))
            offset = end
        }
        let dataLength = offset
        var header = JSONWriter.bytes(.object(entries), .compact)
        while (8 + header.count) % 8 != 0 {
            header.append(UInt8(ascii: " "))
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + header.count + dataLength)
        let length = UInt64(header.count)
        for index in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(index))))
        }
        bytes.append(contentsOf: header)
        for name in order {
            guard let tensor = tensors[name] else { continue }
            bytes.append(contentsOf: tensor.data)
        }
        return bytes
    }

    /// Writes the file atomically: to a temporary file in the same directory,
    /// fsync, rename over `path`, fsync the directory. On any failure the
    /// temporary file is removed and `path` is untouched.
    public func write(to path: String) throws {
        let bytes = try serialized()
        try LocalFile.writeAtomically(bytes, to: path, failure: SafeTensorsError.forFile)
    }

    // MARK: Checked access by name

    /// The tensor called `name`, or an error naming the file and the tensor.
    public func tensor(_ name: String) throws -> SafeTensor {
        guard let tensor = tensors[name] else {
            throw SafeTensorsError(file: source, message: "no tensor named \"\(name)\"")
        }
        return tensor
    }

    /// The values of the F32 tensor `name`, checking its dtype and (if given) shape.
    public func floats(_ name: String, shape: [Int]? = nil) throws -> [Float] {
        try checked(name, .f32, shape).floats()
    }

    /// The values of the I64 tensor `name`, checking its dtype and (if given) shape.
    public func int64s(_ name: String, shape: [Int]? = nil) throws -> [Int64] {
        try checked(name, .i64, shape).int64s()
    }

    /// The values of the F64 tensor `name`, checking its dtype and (if given) shape.
    public func doubles(_ name: String, shape: [Int]? = nil) throws -> [Double] {
        try checked(name, .f64, shape).doubles()
    }

    private func checked(_ name: String, _ dtype: SafeTensorsDType, _ shape: [Int]?) throws -> SafeTensor {
        let tensor = try tensor(name)
        guard tensor.dtype == dtype else {
            throw SafeTensorsError(file: source, message: "tensor \"\(name)\" is \(tensor.dtype.rawValue), expected \(dtype.rawValue)")
        }
        if let shape, tensor.shape != shape {
            throw SafeTensorsError(file: source, message: "tensor \"\(name)\" has shape \(tensor.shape), expected \(shape)")
        }
        return tensor
    }

    /// Equal tensors and metadata; `source` is not compared.
    public static func == (lhs: SafeTensorsFile, rhs: SafeTensorsFile) -> Bool {
        lhs.tensors == rhs.tensors && lhs.metadata == rhs.metadata
    }
}
