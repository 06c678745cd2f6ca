extension String {
    /// The lines joined by single spaces (empty lines dropped): error messages are one
    /// line, whatever a lower layer said or a file's names and values hold.
    var oneLine: String { split(whereSeparator: \.isNewline).joined(separator: " ") }
}
