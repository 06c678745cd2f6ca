// swift-tools-version: 6.0
import PackageDescription

// Speed needs SIMD with fused multiply-add. On x86-64 we build for `haswell`
// (AVX2 + FMA: every x86 server and desktop CPU of the last decade); without a
// CPU target with FMA, `addingProduct` becomes a library call and the kernels
// run ~100x slower. Override with LENET_TARGET_CPU=native (or any LLVM CPU name,
// e.g. znver4, skylake-avx512), or LENET_TARGET_CPU=x86-64 for an old machine.
#if arch(x86_64)
let targetCPU: String? = Context.environment["LENET_TARGET_CPU"] ?? "haswell"
#else
let targetCPU: String? = Context.environment["LENET_TARGET_CPU"]
#endif
let speedFlags: [SwiftSetting] =
    (targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? [])
    + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "lenet",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "LeNetKit", targets: ["LeNetKit"]),
        .executable(name: "lenet", targets: ["lenet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .target(
            name: "LeNetKit",
            dependencies: [
                "CZlib", "CPNG",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: speedFlags
        ),
        .executableTarget(
            name: "lenet",
            dependencies: [
                "LeNetKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: speedFlags
        ),
        .testTarget(
            name: "LeNetKitTests",
            dependencies: ["LeNetKit"],
            resources: [.copy("Fixtures")],
            swiftSettings: speedFlags
        ),
    ]
)
