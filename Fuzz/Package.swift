// swift-tools-version:5.4
// 5.4, not later: from 5.5 on SwiftPM renames an executable's entry point to
// `<module>_main` and links `main` to it, which leaves no `main` for libFuzzer to supply.
import PackageDescription

// libFuzzer targets for LeNetKit's readers of untrusted bytes; run them with
// `Scripts/ci/fuzz.sh [SECONDS] [TARGET...]`, which builds them as
//
//   LENET_SAFETY_CHECKS=1 swift build -c release --package-path Fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// libFuzzer supplies `main` and calls each target's `LLVMFuzzerTestOneInput`;
// LENET_SAFETY_CHECKS=1 builds LeNetKit with -O instead of -Ounchecked, so Swift's
// bounds and overflow checks stay in and trap. A separate package keeps these flags
// and targets out of the normal build and test; it depends on the library's package
// (LeNetKit/) only, so building it fetches and compiles neither Hummingbird nor NIO.
let lenetKit: Target.Dependency = .product(name: "LeNetKit", package: "LeNetKit")

let package = Package(
    name: "LeNetFuzz",
    platforms: [.macOS("14.0")],
    dependencies: [.package(name: "LeNetKit", path: "../LeNetKit")],
    targets: ["FuzzIDX", "FuzzSafeTensors", "FuzzImage", "FuzzPredictAPI"].map {
        .executableTarget(name: $0, dependencies: [lenetKit])
    }
)
