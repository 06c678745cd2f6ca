import Foundation

/// A shared library opened at run time with `dlopen`, and its functions found with
/// `dlsym`: how lenet uses OpenCL and CUDA without needing either to build. The library
/// stays loaded for the life of the process, so its function pointers stay valid.
final class DynamicLibrary: @unchecked Sendable {
    /// The file name that opened, e.g. "libOpenCL.so.1".
    let name: String
    private let handle: UnsafeMutableRawPointer

    /// Opens the first of `names` that loads. `purpose` says what it is for in the error,
    /// e.g. "OpenCL"; `hint` how to get it.
    init(_ names: [String], purpose: String, hint: String) throws {
        for name in names {
            if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) {
                self.name = name
                self.handle = handle
                return
            }
        }
        let tried = names.count == 1 ? names[0] : names.joined(separator: " or ")
        throw GPUError("\(purpose) is not available: \(tried) was not found (\(hint))")
    }

    /// The function `symbol` as the C function type `T` (a `@convention(c)` type).
    func function<T>(_ symbol: String, as type: T.Type = T.self) throws -> T {
        guard let address = dlsym(handle, symbol) else {
            throw GPUError("\(name) has no function \(symbol) (too old a version?)")
        }
        return unsafeBitCast(address, to: T.self)
    }
}

/// A NUL-terminated C string from a fixed buffer filled by a driver.
func stringFromCBuffer(_ bytes: [CChar]) -> String {
    let end = bytes.firstIndex(of: 0) ?? bytes.count
    return String(decoding: bytes[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A library path from environment variable `name`, when set and not empty.
func libraryFromEnvironment(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
}
