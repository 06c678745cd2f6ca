import Foundation

/// How the user ran lenet, so that every printed hint is a command they can paste back:
/// `lenet` when it was found on PATH, the path as typed (`.build/release/lenet`), or
/// `swift run -c release lenet` when SwiftPM started it. `swift run` executes the product
/// with its path relative to the working directory as argv[0]
/// (`.build/x86_64-unknown-linux-gnu/release/lenet`, `../.build/...` from a subfolder),
/// a path through the platform's folder that people rarely type (they type the
/// `.build/release` link).
enum Invocation {
    /// The program as the user can run it again, ready to paste into a shell.
    static let program = programName(argument0: CommandLine.arguments.first ?? "lenet",
                                     workingDirectory: FileManager.default.currentDirectoryPath)

    /// The program followed by `words`, each quoted for the shell where needed.
    static func command(_ words: [String]) -> String {
        ([program] + words.map(shellQuoted)).joined(separator: " ")
    }

    /// The command line of this process as the user typed it (up to quoting).
    static var typed: String { command(Array(CommandLine.arguments.dropFirst())) }

    /// `argument0` read as described above; `workingDirectory` decides whether a `swift run`
    /// needs `--package-path`.
    static func programName(argument0: String, workingDirectory: String) -> String {
        guard argument0.contains("/") else { return shellQuoted(argument0) }  // found on PATH
        var parts = argument0.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // <package>/.build/<platform>/<configuration>/<product>
        guard parts.count >= 4, parts[parts.count - 4] == ".build", !parts[parts.count - 3].isEmpty,
              ["release", "debug"].contains(parts[parts.count - 2]) else { return shellQuoted(argument0) }
        let product = parts[parts.count - 1], configuration = parts[parts.count - 2]
        parts.removeLast(4)
        let root = parts.isEmpty ? "." : (parts == [""] ? "/" : parts.joined(separator: "/"))
        func absolute(_ path: String) -> String {
            ((path.hasPrefix("/") ? path : workingDirectory + "/" + path) as NSString).standardizingPath
        }
        guard FileManager.default.fileExists(atPath: absolute(root) + "/Package.swift") else { return shellQuoted(argument0) }
        var words = ["swift", "run"]
        if absolute(root) != absolute(".") {
            words += ["--package-path", shellQuoted(root)]
        }
        if configuration == "release" { words += ["-c", "release"] }
        return (words + [shellQuoted(product)]).joined(separator: " ")
    }
}

/// `word` as a shell reads it back: as it is when it is plain, else in single quotes.
func shellQuoted(_ word: String) -> String {
    let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
        CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%".unicodeScalars.contains($0)
    }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
