/// A problem with a data file (or the directory that should hold it).
///
/// The description is always one line, `<file>: <what is wrong>`, so the
/// command can print it as `Error: <file>: <what>` and exit non-zero.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or directory) the problem is about.
    public let file: String
    /// What is wrong, in one line.
    public let message: String

    public init(file: String, _ message: String) {
        self.file = file
        // One line, whatever a lower layer (zlib, URLSession, errno) said.
        self.message = message.oneLine
    }

    public var description: String { "\(file): \(message)" }
}
