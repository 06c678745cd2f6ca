// JSON, read and written in one place: the safetensors header (read strictly, written as
// Python's safetensors writes it), `/api/predict` bodies and answers, `predict --json`
// lines, history.json and `bench --json`.
//
// The writer keeps the key order it is given and writes each number as the shortest text
// that reads back as the same value, so every output is reproducible byte for byte.

// MARK: - Values

/// A JSON value. Objects keep their entries in order, duplicates included, so that a
/// reader can reject duplicates and a writer has a fixed key order; numbers keep their
/// text, so that reading then writing changes nothing.
enum JSONValue: Equatable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(a), .array(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    init(_ value: Int) {
        self = .number(String(value))
    }

    /// The shortest text that reads back as the same Double (`0.25`, `1.0`, `1e-05`), zero
    /// as `0`. JSON has no NaN or infinity: those throw.
    init(_ value: Double) throws {
        guard value.isFinite else { throw JSONWriteError(message: "\(value) is not a JSON number") }
        self = .number(value == 0 ? "0" : value.description)
    }

    /// The shortest text that reads back as the same Float, zero as `0`; non-finite values
    /// throw. (Swift's own float printing: `String(format:)` cost ~1.5 ms for the 794 numbers
    /// of an /api/predict answer, most of the request's time.)
    init(_ value: Float) throws {
        guard value.isFinite else { throw JSONWriteError(message: "\(value) is not a JSON number") }
        self = .number(value == 0 ? "0" : value.description)
    }

    /// A list of Floats written as `init(_: Float)` writes them, a NaN or infinity (the output
    /// of a broken checkpoint) as 0: a prediction's answer is always valid JSON.
    static func numbers(_ values: [Float]) -> JSONValue {
        .array(values.map { .number($0 == 0 || !$0.isFinite ? "0" : $0.description) })
    }

    /// The value of the last entry called `key` if this is an object: a repeated key
    /// overrides, as in most readers (Foundation's and Python's among them).
    subscript(key: String) -> JSONValue? {
        guard case .object(let entries) = self else { return nil }
        return entries.last { $0.0 == key }?.1
    }

    /// The number as a Double (infinite when the text is out of range); nil for other kinds.
    var double: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }

    /// The value as an Int if it is written as a plain non-negative integer.
    var nonNegativeInt: Int? {
        guard case .number(let text) = self, !text.isEmpty,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return Int(text)
    }

    /// The value as [Int] if it is a list of plain non-negative integers.
    var nonNegativeInts: [Int]? {
        guard case .array(let items) = self else { return nil }
        let values = items.compactMap(\.nonNegativeInt)
        return values.count == items.count ? values : nil
    }

    var kindDescription: String {
        switch self {
        case .object: return "an object"
        case .array: return "a list"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    /// A short rendering for error messages.
    var summary: String {
        let text: String
        switch self {
        case .object: text = "{...}"
        case .array(let items): text = "[" + items.map(\.summary).joined(separator: ", ") + "]"
        case .string(let value): text = "\"\(value)\""
        case .number(let value): text = value
        case .bool(let value): text = value ? "true" : "false"
        case .null: text = "null"
        }
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }
}

/// A value that JSON cannot hold (NaN or infinity).
struct JSONWriteError: Error, CustomStringConvertible, Sendable {
    let message: String
    var description: String { message }
}

// MARK: - Reading

/// A strict RFC 8259 parser over UTF-8 bytes, with a nesting limit. Rejects what the
/// RFC does not allow (leading zeros, trailing commas, control characters and invalid
/// UTF-8 in strings, unpaired surrogates, anything after the top-level value); keeps
/// duplicate keys for the caller to judge.
struct JSONParser {
    struct Failure: Error, Sendable {
        let message: String
        /// The byte offset in the input where the problem was found.
        let offset: Int
    }

    /// Deep enough for any JSON the project reads; shallow enough that a hostile input
    /// cannot exhaust the stack.
    static let maximumDepth = 64

    private let bytes: [UInt8]
    /// What the input is called in messages ("end of header").
    private let name: String
    private var index = 0

    /// The one JSON value in `input`, surrounded by optional whitespace.
    static func parse(_ input: ArraySlice<UInt8>, name: String = "input") throws -> JSONValue {
        var parser = JSONParser(bytes: Array(input), name: name)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else {
            throw parser.failure("unexpected \(parser.describeCurrent()) after the end of the top-level value")
        }
        return value
    }

    static func parse(_ input: [UInt8], name: String = "input") throws -> JSONValue {
        try parse(input[...], name: name)
    }

    private init(bytes: [UInt8], name: String) {
        self.bytes = bytes
        self.name = name
    }

    private func failure(_ message: String) -> Failure {
        Failure(message: message, offset: index)
    }

    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of \(name)" }
        let byte = bytes[index]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
            index += 1
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        guard index < bytes.count, bytes[index] == byte else {
            throw failure("expected '\(Character(Unicode.Scalar(byte)))' but found \(describeCurrent())")
        }
        index += 1
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth <= JSONParser.maximumDepth else {
            throw failure("nested more than \(JSONParser.maximumDepth) levels deep")
        }
        guard index < bytes.count else { throw failure("unexpected end of \(name)") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw failure("unexpected \(describeCurrent())")
        }
    }

    private mutating func parseLiteral(_ word: String) throws {
        for byte in word.utf8 {
            guard index < bytes.count, bytes[index] == byte else {
                throw failure("invalid literal, expected \(word)")
            }
            index += 1
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        try expect(UInt8(ascii: "{"))
        var entries: [(String, JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(entries)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw failure("expected a string key but found \(describeCurrent())")
            }
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            entries.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw failure("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(entries) }
            throw failure("expected ',' or '}' in object but found \(describeCurrent())")
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        try expect(UInt8(ascii: "["))
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw failure("unterminated list") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            throw failure("expected ',' or ']' in list but found \(describeCurrent())")
        }
    }

    private mutating func parseNumber() throws -> String {
        let start = index
        func digits() -> Int {
            let from = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            return index - from
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else {
            throw failure("invalid number")
        }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                throw failure("invalid number: leading zero")
            }
        } else {
            _ = digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw failure("invalid number: no digits after '.'") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits() > 0 else { throw failure("invalid number: no digits in exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("invalid hex digit in \\u escape")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    private mutating func parseString() throws -> String {
        try expect(UInt8(ascii: "\""))
        var output: [UInt8] = []
        var runStart = index
        while true {
            guard index < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                output.append(contentsOf: bytes[runStart..<index])
                index += 1
                break
            }
            if byte < 0x20 {
                throw failure("unescaped control character 0x\(String(byte, radix: 16)) in string")
            }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            output.append(contentsOf: bytes[runStart..<index])
            index += 1
            guard index < bytes.count else { throw failure("unterminated escape") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): output.append(0x22)
            case UInt8(ascii: "\\"): output.append(0x5C)
            case UInt8(ascii: "/"): output.append(0x2F)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                          bytes[index + 1] == UInt8(ascii: "u") else {
                        throw failure("unpaired surrogate in \\u escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw failure("unpaired surrogate in \\u escape")
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw failure("unpaired surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(code) else {
                    throw failure("invalid \\u escape")
                }
                output.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw failure("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
            }
            runStart = index
        }
        let text = String(decoding: output, as: UTF8.self)
        guard text.utf8.elementsEqual(output) else {
            throw Failure(message: "string is not valid UTF-8", offset: runStart)
        }
        return text
    }
}

// MARK: - Writing

/// Writes a JSON value in one of three layouts. Strings are escaped as serde_json (which
/// Python's safetensors uses) escapes them: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other
/// control characters as `\u00xx`, everything else (`/`, non-ASCII) as it is.
enum JSONWriter {
    enum Layout: Sendable {
        /// `{"a":1,"b":[1,2]}`: the safetensors header, `bench --json`.
        case compact
        /// `{"a": 1, "b": [1, 2]}`: `predict --json` lines and the HTTP API's answers.
        case spaced
        /// Two-space indents and `"key" : value`, as Foundation's JSONEncoder prints
        /// (`.prettyPrinted`): history.json.
        case indented
    }

    static func bytes(_ value: JSONValue, _ layout: Layout) -> [UInt8] {
        var output: [UInt8] = []
        append(value, layout, depth: 0, to: &output)
        return output
    }

    static func text(_ value: JSONValue, _ layout: Layout) -> String {
        String(decoding: bytes(value, layout), as: UTF8.self)
    }

    static func append(_ value: JSONValue, _ layout: Layout, depth: Int = 0, to output: inout [UInt8]) {
        switch value {
        case .object(let entries):
            appendContainer(entries, open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), layout, depth, &output) { entry, output in
                appendString(entry.0, to: &output)
                switch layout {
                case .compact: output.append(UInt8(ascii: ":"))
                case .spaced: output.append(contentsOf: ": ".utf8)
                case .indented: output.append(contentsOf: " : ".utf8)
                }
                append(entry.1, layout, depth: depth + 1, to: &output)
            }
        case .array(let items):
            appendContainer(items, open: UInt8(ascii: "["), close: UInt8(ascii: "]"), layout, depth, &output) { item, output in
                append(item, layout, depth: depth + 1, to: &output)
            }
        case .string(let text): appendString(text, to: &output)
        case .number(let text): output.append(contentsOf: text.utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .null: output.append(contentsOf: "null".utf8)
        }
    }

    /// Items between `open` and `close`; indented as JSONEncoder does, even when empty
    /// (`[`, a blank line, `]`).
    private static func appendContainer<Item>(_ items: [Item], open: UInt8, close: UInt8, _ layout: Layout, _ depth: Int,
                                              _ output: inout [UInt8], item: (Item, inout [UInt8]) -> Void) {
        output.append(open)
        if layout == .indented { output.append(0x0A) }
        for (index, element) in items.enumerated() {
            if index > 0 {
                output.append(UInt8(ascii: ","))
                if layout == .indented { output.append(0x0A) } else if layout == .spaced { output.append(UInt8(ascii: " ")) }
            }
            if layout == .indented { output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * (depth + 1))) }
            item(element, &output)
        }
        if layout == .indented {
            output.append(0x0A)
            output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
        }
        output.append(close)
    }

    static func appendString(_ string: String, to output: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case 0x22: output.append(contentsOf: [0x5C, 0x22])
            case 0x5C: output.append(contentsOf: [0x5C, 0x5C])
            case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20:
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
