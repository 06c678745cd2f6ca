// swift-tools-version: 6.1
import PackageDescription

// LeNetKit, the library, in a package of its own: a package that depends on it fetches
// swift-protobuf only, not what the `lenet` command and its web server
// need (swift-argument-parser, Hummingbird, SwiftNIO), which the repository root's
// Package.swift declares. SwiftPM cannot depend on a sub-folder of a repository by URL,
// so the library is used by path: `.package(path: ".../lenet/LeNetKit")`.

// Speed needs SIMD with fused multiply-add. We build for the CPU that builds us
// (`native`): without a CPU target that has FMA, `addingProduct` becomes a library
// call and the kernels run ~100x slower, and AVX-512 doubles the speed again where
// the CPU has it. To build a binary for other machines, set LENET_TARGET_CPU to an
// LLVM CPU name (e.g. `haswell` for any x86-64 with AVX2 + FMA, `x86-64` for all).
let targetCPU: String? = Context.environment["LENET_TARGET_CPU"] ?? "native"
// -Ounchecked removes Swift's bounds and overflow checks for speed. LENET_SAFETY_CHECKS=1
// keeps them (plain -O): the fuzzers in Fuzz/ and the sanitizer runs build this way, so
// that an index out of range or an overflow in the library traps and is reported instead
// of passing silently.
let safetyChecks = Context.environment["LENET_SAFETY_CHECKS"] == "1"
let speedFlags: [SwiftSetting] =
    (targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? [])
    + (safetyChecks ? [] : [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))])
// The tests (in the repository root's package) reach the library's internals (kernels
// beside their references, the CPU backend's steps) with `@testable import`. The library
// is built testable itself, so that `swift build` and `swift test --disable-testable-imports`
// share one build of every module instead of compiling all of them twice.
// (Unsafe flags are allowed here because the library is used as a root or by path.)
let testableLibrary: [SwiftSetting] = [.unsafeFlags(["-enable-testing"])]

let package = Package(
    name: "LeNetKit",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LeNetKit", targets: ["LeNetKit"]),
    ],
    dependencies: [
        // None of swift-protobuf's optional traits: the ONNX export needs neither, and SwiftPM
        // passes two or more enabled traits to the compiler in an order that changes from one
        // invocation to the next, so every `swift build` or `swift test` had an even chance
        // of compiling the whole module again (about a minute).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        // MD5 of the MNIST downloads on Linux: the system's OpenSSL libcrypto, as zlib and
        // libpng are the system's (Apple platforms have CryptoKit). swift-crypto would
        // compile its own copy of BoringSSL, about 350 C files, in every build.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // Atomics and the spin-wait hint for the thread pool (C).
        .target(name: "CThreadSupport", path: "Sources/CThreadSupport"),
        .target(
            name: "LeNetKit",
            dependencies: [
                "CZlib", "CPNG", "CThreadSupport",
                .target(name: "COpenSSL", condition: .when(platforms: [.linux])),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            // The ONNX schema the generated Export/ONNX/onnx.pb.swift came from (see Export/ONNX/README.md).
            // The GPU kernels' C sources: the library carries them as KernelSources.generated.swift.
            exclude: ["Export/ONNX/onnx.proto", "Export/ONNX/README.md", "Engine/GPU/Kernels"],
            swiftSettings: speedFlags + testableLibrary
        ),
    ]
)
