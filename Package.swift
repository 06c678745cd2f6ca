// swift-tools-version: 6.1
import PackageDescription

// The `lenet` command (and its web server), the examples and the tests. The library they
// use, LeNetKit, is a package of its own in LeNetKit/, so that a Swift package depending on
// it does not fetch what only the command needs (swift-argument-parser, Hummingbird, SwiftNIO).
// Build settings: the same as the library's (LeNetKit/Package.swift explains them).

// Speed needs SIMD with fused multiply-add: build for the CPU that builds us (`native`)
// unless LENET_TARGET_CPU names an LLVM CPU (e.g. `haswell`, or `x86-64` for all x86-64).
let targetCPU: String? = Context.environment["LENET_TARGET_CPU"] ?? "native"
// -Ounchecked in release unless LENET_SAFETY_CHECKS=1 (plain -O, Swift's checks kept).
let safetyChecks = Context.environment["LENET_SAFETY_CHECKS"] == "1"
let cpuFlags: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []
let speedFlags: [SwiftSetting] =
    cpuFlags + (safetyChecks ? [] : [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))])
let lenetKit: Target.Dependency = .product(name: "LeNetKit", package: "LeNetKit")
// The tests' own code (references, checks, swift-testing's macros) is built without
// optimisation; the library under test is optimised either way. On the 2-vCPU development
// VM the test module then builds in 53 s instead of 164 s, after every change to the
// library, and the suite runs 22 s longer (74 s instead of 52). Except with
// LENET_SAFETY_CHECKS=1, as the sanitizer builds are: ThreadSanitizer instruments every
// memory access, and unoptimised test code made its run take 332 s instead of 181.
let testSettings: [SwiftSetting] = cpuFlags + (safetyChecks ? [] : [.unsafeFlags(["-Onone"])])

let package = Package(
    name: "lenet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lenet", targets: ["lenet"]),
    ],
    dependencies: [
        .package(path: "LeNetKit"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The tests read the ONNX export with the library's own protobuf package.
        // No optional traits, here as in LeNetKit/Package.swift (which says why).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        // `lenet serve` only (the library does not depend on it).
        // Without its default traits (swift-configuration support, full Foundation), which
        // `lenet serve` does not use; enabled, they too were passed in a changing order and
        // made each build compile Hummingbird's modules again.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
    ],
    targets: [
        .executableTarget(
            name: "lenet",
            dependencies: [
                lenetKit,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: speedFlags
        ),
        // Examples/: small programs that use the library as a Swift user would (built and run in CI).
        .executableTarget(name: "train-lenet", dependencies: [lenetKit], path: "Examples/TrainLeNet",
                          swiftSettings: speedFlags),
        .executableTarget(name: "predict-digit", dependencies: [lenetKit], path: "Examples/PredictDigit",
                          swiftSettings: speedFlags),
        // Counts the test process's heap allocations on chosen threads (AllocationTests) by
        // replacing malloc in the test runner: not in the sanitizer builds (they set
        // LENET_SAFETY_CHECKS=1), whose runtimes replace it themselves.
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter",
                cSettings: safetyChecks ? [] : [.define("LENET_COUNT_ALLOCATIONS")]),
        .testTarget(
            name: "LeNetKitTests",
            dependencies: [lenetKit, "AllocationCounter", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            resources: [.copy("Fixtures")],
            swiftSettings: testSettings
        ),
    ]
)
