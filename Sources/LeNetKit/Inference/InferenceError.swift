/// Why one image could not be read, prepared or predicted: the file and one line.
public struct InferenceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or request) the image came from; may be empty.
    public let file: String
    public let message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { file.isEmpty ? message : "\(file): \(message)" }
}
