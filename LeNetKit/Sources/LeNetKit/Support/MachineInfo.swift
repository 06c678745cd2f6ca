import Foundation

/// The machine a run happened on, for reports and benchmarks: CPU, cores, memory, system.
public struct MachineInfo: Sendable, Equatable {
    public var cpuModel: String
    public var logicalCores: Int
    public var memoryBytes: UInt64
    public var operatingSystem: String
    public var kernel: String

    public init(cpuModel: String, logicalCores: Int, memoryBytes: UInt64, operatingSystem: String, kernel: String) {
        self.cpuModel = cpuModel
        self.logicalCores = logicalCores
        self.memoryBytes = memoryBytes
        self.operatingSystem = operatingSystem
        self.kernel = kernel
    }

    /// Reads /proc/cpuinfo ("model name") and /etc/os-release ("PRETTY_NAME") where they exist.
    public static func current() -> MachineInfo {
        let info = ProcessInfo.processInfo
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        let cpu = value(of: "model name", in: cpuinfo, separator: ":") ?? "unknown CPU"
        let os = value(of: "PRETTY_NAME", in: osRelease, separator: "=").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            ?? info.operatingSystemVersionString
        var name = utsname()
        uname(&name)
        let kernel = [name.sysname, name.release, name.machine].map { field in
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }.joined(separator: " ")
        return MachineInfo(cpuModel: cpu, logicalCores: info.activeProcessorCount, memoryBytes: info.physicalMemory,
                           operatingSystem: os, kernel: kernel)
    }

    /// The first "key<separator>value" line's value.
    public static func value(of key: String, in text: String, separator: Character) -> String? {
        for line in text.split(separator: "\n") {
            guard let split = line.firstIndex(of: separator),
                  line[..<split].trimmingCharacters(in: .whitespaces) == key else { continue }
            return line[line.index(after: split)...].trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
