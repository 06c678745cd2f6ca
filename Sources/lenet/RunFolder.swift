import Foundation
import LeNetKit

/// The files a run leaves in its folder.
enum RunFolder {
    /// runs/<yyyyMMdd-HHmmss>-<name>, local time: the default run folder of train and experiment.
    static func defaultPath(name: String, now: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(formatter.string(from: now))-\(name)"
    }

    /// Creates the folder and checks it can be written, before any training starts.
    static func prepare(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CommandError("\(path): cannot create the run folder (\(error.localizedDescription))")
        }
        guard canWrite(in: path) else { throw CommandError("\(path): cannot write in the run folder") }
    }

    /// Checks that the file `path` can be written, before the work whose result it is.
    static func checkCanWrite(file path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw CommandError("\(path): cannot write: the folder \(folder) does not exist")
        }
        guard isDirectory.boolValue else { throw CommandError("\(path): cannot write: \(folder) is not a folder") }
        guard canWrite(in: folder) else { throw CommandError("\(path): cannot write in \(folder)") }
    }

    /// A real write, not a permission check: permissions do not tell about read-only
    /// file systems, a full disk or a root user.
    private static func canWrite(in folder: String) -> Bool {
        let probe = (folder as NSString).appendingPathComponent(".lenet-write-check-\(getpid())")
        guard FileManager.default.createFile(atPath: probe, contents: Data("ok".utf8)) else { return false }
        try? FileManager.default.removeItem(atPath: probe)
        return true
    }

    static func writeHistory(_ history: [EpochRecord], to folder: String) throws {
        try atomicWrite(Data(TrainingHistory.csv(history).utf8), to: (folder as NSString).appendingPathComponent("history.csv"))
        try atomicWrite(TrainingHistory.json(history), to: (folder as NSString).appendingPathComponent("history.json"))
    }

    private static func atomicWrite(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CommandError("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
