import Foundation
@testable import LeNetKit
import Testing

/// The one JSON reader and writer (Support/JSON.swift): round trips, escapes, numbers,
/// malformed input, the nesting limit, and the layouts the project's files and answers use.
@Suite struct JSONTests {
    private static func parse(_ text: String) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    /// The message a malformed input is rejected with, and where.
    private static func rejection(_ bytes: [UInt8]) -> JSONParser.Failure? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch let failure as JSONParser.Failure {
            return failure
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    static let document: JSONValue = .object([
        ("name", .string("lenet \"5\"\n\t\\ / é 😀 \u{01}\u{1F}\u{7F}")),
        ("shape", .array([JSONValue(6), JSONValue(1), JSONValue(5), JSONValue(5)])),
        ("empty list", .array([])),
        ("empty object", .object([])),
        ("flags", .array([.bool(true), .bool(false), .null])),
        ("numbers", .array([.number("-0.5"), .number("1e-07"), .number("12345678901234567890"), .number("0")])),
        ("nested", .object([("a", .object([("b", .array([.array([.string("")])]))]))])),
    ])

    @Test(arguments: [JSONWriter.Layout.compact, .spaced, .indented])
    func writingThenReadingGivesTheSameValue(layout: JSONWriter.Layout) throws {
        let bytes = JSONWriter.bytes(Self.document, layout)
        #expect(try JSONParser.parse(bytes) == Self.document)
        // Foundation reads it too, to the same strings and numbers.
        let foundation = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(foundation["name"] as? String == "lenet \"5\"\n\t\\ / é 😀 \u{01}\u{1F}\u{7F}")
        #expect((foundation["shape"] as? [NSNumber])?.map(\.intValue) == [6, 1, 5, 5])
    }

    @Test func readingThenWritingGivesTheSameText() throws {
        let compact = #"{"a":[1,-2.5e+3,0.125,true,null],"b":{"c":"d\"e"},"a":{}}"#
        #expect(JSONWriter.text(try Self.parse(compact), .compact) == compact)
        let spaced = #"{"file": "x.png", "digit": 7, "probabilities": [0, 1.0, 1e-05]}"#
        #expect(JSONWriter.text(try Self.parse(spaced), .spaced) == spaced)
    }

    @Test func layouts() {
        let value: JSONValue = .object([("a", .array([JSONValue(1), JSONValue(2)])), ("b", .object([])), ("c", .array([]))])
        #expect(JSONWriter.text(value, .compact) == #"{"a":[1,2],"b":{},"c":[]}"#)
        #expect(JSONWriter.text(value, .spaced) == #"{"a": [1, 2], "b": {}, "c": []}"#)
        #expect(JSONWriter.text(value, .indented) == """
            {
              "a" : [
                1,
                2
              ],
              "b" : {

              },
              "c" : [

              ]
            }
            """)
    }

    @Test func stringsAreEscapedAsSerdeJSONDoes() throws {
        var control = ""
        for code in 0..<0x20 { control.unicodeScalars.append(Unicode.Scalar(UInt8(code))) }
        let written = JSONWriter.text(.string(control + "\"\\/é😀\u{7F}"), .compact)
        #expect(written == #""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#
                + #"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"#
                + "\\\"\\\\/é😀\u{7F}\"")
        #expect(try Self.parse(written) == .string(control + "\"\\/é😀\u{7F}"))
    }

    @Test func escapesAreRead() throws {
        #expect(try Self.parse(#""\/\b\f\n\r\t\"\\\u00e9\u00E9\ud83d\ude00\u0000""#) == .string("/\u{8}\u{C}\n\r\t\"\\éé😀\u{0}"))
        // Keys are strings like any other: escaped, they compare by their text.
        #expect(try Self.parse(#"{"pix\u0065ls": 1}"#)["pixels"] == JSONValue(1))
    }

    @Test func numbersAreTheShortestTextThatReadsBackExactly() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let float = Float(bitPattern: generator.next() as UInt32)
            let double = Double(bitPattern: generator.next() as UInt64)
            if float.isFinite {
                guard case .number(let text) = try JSONValue(float) else { Issue.record("not a number"); continue }
                #expect(Float(text)?.bitPattern == (float == 0 ? 0 : float.bitPattern), "\(float) as \(text)")
            }
            if double.isFinite {
                guard case .number(let text) = try JSONValue(double) else { Issue.record("not a number"); continue }
                #expect(Double(text)?.bitPattern == (double == 0 ? 0 : double.bitPattern), "\(double) as \(text)")
            }
        }
        #expect(try JSONValue(Float(0.1)) == .number("0.1"))
        #expect(try JSONValue(Float(1)) == .number("1.0"))
        #expect(try JSONValue(-Float.zero) == .number("0"))
        #expect(try JSONValue(1e-7 as Double) == .number("1e-07"))
        #expect(JSONValue(-42) == .number("-42"))
        for bad in [Double.nan, .infinity, -.infinity] {
            #expect(throws: JSONWriteError.self) { try JSONValue(bad) }
            #expect(throws: JSONWriteError.self) { try JSONValue(Float(bad)) }
        }
        // A prediction's numbers are always valid JSON: NaN and infinities become 0.
        #expect(JSONWriter.text(.numbers([0.5, .nan, .infinity, -0.0, 3]), .spaced) == "[0.5, 0, 0, 0, 3.0]")
    }

    /// Kept for a reader that rejects them (the safetensors header); looked up, the last wins.
    @Test func duplicateKeysAreKeptInOrder() throws {
        let value = try Self.parse(#"{"k": 1, "k": 2}"#)
        #expect(value == .object([("k", JSONValue(1)), ("k", JSONValue(2))]))
        #expect(value["k"] == JSONValue(2))
        #expect(value["missing"] == nil)
    }

    @Test func eachMalformedInputIsRejectedWithItsOwnMessage() {
        let cases: [(String, [UInt8], String, Int)] = [
            ("empty", [], "unexpected end of input", 0),
            ("only whitespace", Array(" \n".utf8), "unexpected end of input", 2),
            ("bare word", Array("nope".utf8), "invalid literal, expected null", 1),
            ("NaN", Array("NaN".utf8), "unexpected 'N'", 0),
            ("leading zero", Array("[01]".utf8), "invalid number: leading zero", 2),
            ("plus sign", Array("+1".utf8), "unexpected '+'", 0),
            ("no digits after the point", Array("1.".utf8), "invalid number: no digits after '.'", 2),
            ("no exponent digits", Array("1e+".utf8), "invalid number: no digits in exponent", 3),
            ("minus alone", Array("-".utf8), "invalid number", 1),
            ("trailing comma in a list", Array("[1,]".utf8), "unexpected ']'", 3),
            ("trailing comma in an object", Array(#"{"a":1,}"#.utf8), "expected a string key but found '}'", 7),
            ("key not a string", Array("{1:2}".utf8), "expected a string key but found '1'", 1),
            ("missing colon", Array(#"{"a" 1}"#.utf8), "expected ':' but found '1'", 5),
            ("unterminated list", Array("[1".utf8), "unterminated list", 2),
            ("unterminated object", Array(#"{"a":1"#.utf8), "unterminated object", 6),
            ("unterminated string", Array(#""abc"#.utf8), "unterminated string", 4),
            ("control character", [0x22, 0x61, 0x0A, 0x22], "unescaped control character 0xa in string", 2),
            ("invalid escape", Array(#""\x""#.utf8), "invalid escape '\\x'", 3),
            ("bad hex", Array(#""\u12G4""#.utf8), "invalid hex digit in \\u escape", 5),
            ("truncated \\u", Array(#""\u12"#.utf8), "truncated \\u escape", 3),
            ("lone high surrogate", Array(#""\ud800x""#.utf8), "unpaired surrogate in \\u escape", 7),
            ("high then not low", Array(#""\ud800\u0041""#.utf8), "unpaired surrogate in \\u escape", 13),
            ("lone low surrogate", Array(#""\udc00""#.utf8), "unpaired surrogate in \\u escape", 7),
            ("invalid UTF-8", [0x22, 0xFF, 0x22], "string is not valid UTF-8", 1),
            ("overlong UTF-8", [0x22, 0xC0, 0xAF, 0x22], "string is not valid UTF-8", 1),
            ("two values", Array("1 2".utf8), "unexpected '2' after the end of the top-level value", 2),
            ("stray byte after", [0x7B, 0x7D, 0x00], "unexpected byte 0x0 after the end of the top-level value", 2),
        ]
        var messages: Set<String> = []
        for (label, bytes, expected, offset) in cases {
            let failure = Self.rejection(bytes)
            #expect(failure?.message == expected, "\(label): got \(failure?.message ?? "no error")")
            #expect(failure?.offset == offset, "\(label): at \(failure.map { String($0.offset) } ?? "-")")
            if let failure { messages.insert(failure.message) }
        }
        #expect(messages.count > 20, "the messages tell the cases apart")
    }

    @Test func theInputIsNamedInMessages() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array("[".utf8), name: "header") }
        do {
            _ = try JSONParser.parse(Array(#"{"a": "#.utf8), name: "header")
        } catch let failure as JSONParser.Failure {
            #expect(failure.message == "unexpected end of header")
        }
    }

    @Test func nestingIsLimited() throws {
        let limit = JSONParser.maximumDepth
        // The top-level value is depth 0: `limit + 1` nested lists are the most accepted.
        let deepest = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: Never.self) { try Self.parse(deepest) }
        let tooDeep = String(repeating: "[", count: limit + 2) + String(repeating: "]", count: limit + 2)
        #expect(Self.rejection(Array(tooDeep.utf8))?.message == "nested more than \(limit) levels deep")
        let objects = String(repeating: #"{"a":"#, count: limit + 2) + "1" + String(repeating: "}", count: limit + 2)
        #expect(Self.rejection(Array(objects.utf8))?.message == "nested more than \(limit) levels deep")
        // A hostile depth fails fast at the limit instead of exhausting the stack.
        let hostile = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(Self.rejection(hostile)?.offset == limit + 1)
    }

    // MARK: The project's outputs, byte for byte as Foundation's JSONEncoder wrote them
    // (which differs only for a whole number held in a Double: it wrote `2`, the writer `2.0`,
    // the same number to any reader; no figure in these files is a whole number but 0).

    @Test func historyIsWhatJSONEncoderWrote() throws {
        let history = [
            EpochRecord(epoch: 1, trainAccuracy: 0.5103, trainLoss: 1.4672931, testAccuracy: 0.9052, testLoss: 0.30718,
                        seconds: 1.2839471),
            EpochRecord(epoch: 2, trainAccuracy: 0.98215, trainLoss: 0.0561234567, testAccuracy: 0.1 + 0.2, testLoss: 1e-7,
                        seconds: 123456.789),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        #expect(String(decoding: try TrainingHistory.json(history), as: UTF8.self)
                == String(decoding: try encoder.encode(history), as: UTF8.self))
        #expect(try JSONDecoder().decode([EpochRecord].self, from: TrainingHistory.json(history)) == history)
        #expect(try TrainingHistory.json([]) == encoder.encode([EpochRecord]()))
        // The one difference, a whole number in a Double.
        let whole = [EpochRecord(epoch: 1, trainAccuracy: 0.5, trainLoss: 0.5, testAccuracy: 0.5, testLoss: 0.5, seconds: 2)]
        let ours = String(decoding: try TrainingHistory.json(whole), as: UTF8.self)
        let foundation = String(decoding: try encoder.encode(whole), as: UTF8.self)
        #expect(ours.contains("\"seconds\" : 2.0,\n") && foundation.contains("\"seconds\" : 2,\n"))
        #expect(ours.replacingOccurrences(of: "2.0,", with: "2,") == foundation)
        var broken = history
        broken[1].trainLoss = .nan
        #expect(throws: JSONWriteError.self) { try TrainingHistory.json(broken) }
    }

    /// A CPU report (threads, no GPU) and a GPU one (a GPU, no threads, no peak).
    @Test(arguments: ["\"threads\": 2, \"peakGFLOPS\": 61.5, \"peakVariation\": 0.125, \"trainFractionOfPeak\": 0.25",
                      "\"gpu\": \"opencl (NVIDIA H200)\""])
    func benchReportIsWhatJSONEncoderWrote(device: String) throws {
        let report = try JSONDecoder().decode(BenchmarkReport.self, from: Data("""
            {"model": "lenet-bn", \(device), "batchSize": 32, "loadSeconds": 0.1304, "trainImagesPerSecond": 49461.25,
             "epochSeconds": 1.3517, "inferenceBatchSize": 1000, "inferenceImagesPerSecond": 154034.5,
             "batch1LatencyMicroseconds": 9.8125, "peakResidentMegabytes": 105.33}
            """.utf8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(try report.json() == String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}
