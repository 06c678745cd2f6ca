import Foundation

/// How much the tests that train on MNIST do. `LENET_TEST_WORKLOAD=small` makes the
/// slowest of them train less, so that the whole suite runs under ThreadSanitizer
/// (~20x slower kernels) and AddressSanitizer in a few minutes: Scripts/ci/sanitizers.sh
/// sets it. Every test still runs, through the same code paths; only the amount of
/// training (and, where accuracy depends on it, the bar) changes. Unset, or any other
/// value: the full workload, which `swift test -c release` and CI's plain run use.
enum TestWorkload {
    static let isSmall = ProcessInfo.processInfo.environment["LENET_TEST_WORKLOAD"] == "small"
}
