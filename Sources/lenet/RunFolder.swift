import Foundation
import LeNetKit
import Synchronization

/// The files a run leaves in its folder, and the folder itself: created exclusively, locked
/// while a run uses it, never shared by two runs.
enum RunFolder {
    /// runs/<yyyyMMdd-HHmmss-SSS>-<name>, local time to the millisecond: the default run folder
    /// of train and experiment. Names sort by start time.
    static func defaultPath(name: String, now: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss-SSS"
        return "runs/\(formatter.string(from: now))-\(name)"
    }

    /// The run's files, which `--overwrite` removes from an earlier run in the folder.
    static let runFiles = ["last.safetensors", "best.safetensors", "state.safetensors", "history.csv", "history.json",
                           "curves.svg", "report.html"]
    static let lockName = ".lenet.lock"

    /// The lock files this process holds; a lock lasts until the process ends.
    private static let held = Mutex<[Int32]>([])
    /// The folders this process created (run folders and their missing parents), in order.
    private static let created = Mutex<[String]>([])

    /// The folder of a run, ready before any download or training: the given one (`--resume`:
    /// it must hold the run; `--output`: new or empty unless `overwrite`), else a new default
    /// one named after `name` (the next free millisecond if two runs start together). It is
    /// locked for this process, temporary files that a killed run left are removed, and a
    /// real write is tried.
    static func prepare(resume: String? = nil, output: String?, overwrite: Bool, name: String) throws -> String {
        if let resume {
            try lock(resume)
            return resume
        }
        if let output {
            try prepare(output, overwrite: overwrite)
            return output
        }
        let start = Date()
        for millisecond in 0..<1000 {
            let path = defaultPath(name: name, now: start.addingTimeInterval(Double(millisecond) / 1000))
            try makeParents(of: path)
            if mkdir(path, 0o755) == 0 {
                created.withLock { $0.append(path) }
                try lock(path)
                return path
            }
            guard errno == EEXIST else { throw cannotCreate(path, LocalFile.errnoDescription()) }
        }
        throw CommandError("runs: no free run folder name in the next second; pass --output")
    }

    /// A run folder for a new run at `path`: created if missing; an existing one must be empty,
    /// unless `overwrite`, which removes the earlier run's files once the folder is locked.
    static func prepare(_ path: String, overwrite: Bool) throws {
        try makeParents(of: path)
        if mkdir(path, 0o755) != 0 {
            guard errno == EEXIST else { throw cannotCreate(path, LocalFile.errnoDescription()) }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw cannotCreate(path, "a file is in the way")
            }
            // Looked at under the lock: another run may have taken the folder since our mkdir.
            let fd = try lock(path)
            let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != lockName }
            if !entries.isEmpty && !overwrite {
                unlock(fd)
                throw CommandError("\(path): the run folder already holds a run or other files; replace it with --overwrite "
                                   + "or choose another --output (a stopped training run goes on with `\(Invocation.command(["train", "--resume", path]))`)")
            }
            if overwrite {
                for name in runFiles { unlink((path as NSString).appendingPathComponent(name)) }
            }
            return
        }
        created.withLock { $0.append(path) }
        try lock(path)
    }

    /// After a run that failed before its first save: removes the folders this process
    /// created that hold nothing but the lock file, newest first (so a `runs/` made for the
    /// run goes too when it is empty). A folder the user made, or one with any other file,
    /// stays as it is.
    static func removeUnusedFolders() {
        for path in created.withLock({ folders in defer { folders = [] }; return folders }).reversed() {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]
            guard entries.allSatisfy({ $0 == lockName }) else { continue }
            if !entries.isEmpty { unlink((path as NSString).appendingPathComponent(lockName)) }
            rmdir(path)  // fails, harmlessly, if anything appeared meanwhile
        }
    }

    /// Locks `path` for this process (flock on its lock file), or says which run holds it;
    /// then removes what killed runs left and checks that the folder takes a real write.
    @discardableResult
    private static func lock(_ path: String) throws -> Int32 {
        let lockPath = (path as NSString).appendingPathComponent(lockName)
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw CommandError("\(path): cannot write in the run folder (\(LocalFile.errnoDescription()))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let owner = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw CommandError("\(path): the run folder is in use by another lenet run\(owner.isEmpty ? "" : " (pid \(owner))"); "
                               + "wait for it to end or choose another --output")
        }
        // The holder's pid, for the message another run gets.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) != 0 || pwrite(fd, pid, pid.count, 0) != pid.count {
            close(fd)
            throw CommandError("\(path): cannot write in the run folder (\(LocalFile.errnoDescription()))")
        }
        held.withLock { $0.append(fd) }
        LocalFile.removeStaleTemporaryFiles(in: path)
        guard canWrite(in: path) else { throw CommandError("\(path): cannot write in the run folder") }
        return fd
    }

    private static func unlock(_ fd: Int32) {
        held.withLock { $0.removeAll { $0 == fd } }
        close(fd)  // closing drops the flock
    }

    private static func makeParents(of path: String) throws {
        let parent = parentFolder(of: path)
        guard !parent.isEmpty else { return }
        var missing: [String] = []  // the parents that do not exist yet, innermost first
        var ancestor = parent
        while !ancestor.isEmpty, ancestor != "/", !FileManager.default.fileExists(atPath: ancestor) {
            missing.append(ancestor)
            ancestor = parentFolder(of: ancestor)
        }
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw cannotCreate(path, error.localizedDescription)
        }
        created.withLock { $0 += missing.reversed() }
    }

    /// The folder part of `path`: "a/b" for "a/b/run", "/" for "/run", "" for a bare name.
    /// Worked out here because this Foundation's `NSString.deletingLastPathComponent` traps
    /// on a one-character name (`--output a`).
    static func parentFolder(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    private static func cannotCreate(_ path: String, _ reason: String) -> CommandError {
        CommandError("\(path): cannot create the run folder (\(reason))")
    }

    /// Checks that the file `path` can be written, before the work whose result it is.
    static func checkCanWrite(file path: String) throws {
        let folder = parentFolder(of: path).isEmpty ? "." : parentFolder(of: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw CommandError("\(path): cannot write: the folder \(folder) does not exist")
        }
        guard isDirectory.boolValue else { throw CommandError("\(path): cannot write: \(folder) is not a folder") }
        try LocalFile.checkReplaceable(path)  // a symbolic link, FIFO or device is refused, not replaced
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
        try LocalFile.writeFile(TrainingHistory.csv(history), to: (folder as NSString).appendingPathComponent("history.csv"))
        try LocalFile.writeFile([UInt8](TrainingHistory.json(history)), to: (folder as NSString).appendingPathComponent("history.json"))
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
