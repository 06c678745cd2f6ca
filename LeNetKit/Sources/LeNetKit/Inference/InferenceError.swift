/// Why one image could not be read, prepared or predicted: the file and one line.
public struct InferenceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or request) the image came from; may be empty.
    public let file: String
    public let message: String
    /// The picture is readable but larger than the decoder's pixel budget (HTTP 413).
    public let isTooLarge: Bool

    public init(file: String, _ message: String, isTooLarge: Bool = false) {
        self.file = file
        self.message = message
        self.isTooLarge = isTooLarge
    }

    public var description: String { file.isEmpty ? message : "\(file): \(message)" }
}
