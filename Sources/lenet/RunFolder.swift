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
        // A real write, not a permission check: permissions do not tell about read-only
        // file systems, a full disk or a root user.
        let probe = (path as NSString).appendingPathComponent(".lenet-write-check-\(getpid())")
        guard FileManager.default.createFile(atPath: probe, contents: Data("ok".utf8)) else {
            throw CommandError("\(path): cannot write in the run folder")
        }
        try? FileManager.default.removeItem(atPath: probe)
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
