import Foundation

/// The machine's FP32 multiply-add peak, measured: independent `SIMD16<Float>` FMA chains
/// (no loads, no stores) on 1 thread, then on `threads` threads at once. `lenet bench`
/// reports every figure as a fraction of these, measured in the same run, because this
/// kind of VM drifts by 2x between days and some days its vCPUs share one core's vector
/// units: then the all-thread figure is about the 1-thread one (speed-up near 1.0x).
///
/// The accumulate is written `acc.addingProduct(a, b)`, which the package's CPU target
/// (`-target-cpu native`) turns into one FMA instruction, in enough independent chains to
/// cover the FMA units' latency times their count (see `Loop`).
public struct PeakProbe: Sendable, Codable, Equatable {
    /// GFLOP/s (2 FLOP per lane per multiply-add) on one thread.
    public var singleThreadGFLOPS: Double
    /// GFLOP/s of all `threads` together, each running the same loop at the same time.
    public var allThreadsGFLOPS: Double
    /// The threads of the all-thread measurement.
    public var threads: Int

    public init(singleThreadGFLOPS: Double, allThreadsGFLOPS: Double, threads: Int) {
        self.singleThreadGFLOPS = singleThreadGFLOPS
        self.allThreadsGFLOPS = allThreadsGFLOPS
        self.threads = threads
    }

    /// All threads over one: ~`threads` where every thread has its own vector units,
    /// ~1.0 where they share them (hyper-threads, or vCPUs on one physical core).
    public var speedup: Double { singleThreadGFLOPS > 0 ? allThreadsGFLOPS / singleThreadGFLOPS : 0 }

    /// Whether extra threads add arithmetic: the speed-up is at least 1.3x.
    public var threadsAddArithmetic: Bool { threads > 1 && speedup >= 1.3 }

    /// Measures: each figure the best of `rounds` runs of about `seconds` each.
    public static func measure(threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                               seconds: Double = 0.1, rounds: Int = 3) -> PeakProbe {
        let threads = max(1, threads)
        var single = 0.0, all = 0.0
        for loop in Loop.allCases {
            let iterations = calibrate(loop, seconds: seconds)
            for _ in 0..<max(1, rounds) {
                single = max(single, gflops(loop, threads: 1, iterations: iterations))
                if threads > 1 { all = max(all, gflops(loop, threads: threads, iterations: iterations)) }
            }
        }
        return PeakProbe(singleThreadGFLOPS: single, allThreadsGFLOPS: threads == 1 ? single : all, threads: threads)
    }

    /// The higher of each figure over measurements of the same machine at different times
    /// (`lenet bench` measures before and after its runs): the peak it showed in that time.
    public static func best(of probes: [PeakProbe]) -> PeakProbe {
        precondition(!probes.isEmpty, "no measurement to take the best of")
        return PeakProbe(singleThreadGFLOPS: probes.map(\.singleThreadGFLOPS).max()!,
                         allThreadsGFLOPS: probes.map(\.allThreadsGFLOPS).max()!, threads: probes[0].threads)
    }

    /// How far the lowest measurement of a figure falls below the highest, as a fraction of
    /// the highest, the larger of the two figures': 0 where the machine ran at one speed
    /// throughout. On a VM whose cores other tenants share, it can be tens of percent, and
    /// a fraction of the peak is uncertain by about as much.
    public static func variation(of probes: [PeakProbe]) -> Double {
        func spread(_ figures: [Double]) -> Double {
            guard let high = figures.max(), let low = figures.min(), high > 0 else { return 0 }
            return (high - low) / high
        }
        return max(spread(probes.map(\.singleThreadGFLOPS)), spread(probes.map(\.allThreadsGFLOPS)))
    }

    /// Two loops, since the best number of independent chains depends on the vector
    /// registers: 6 chains of 16 lanes fill AVX2's 16 256-bit registers (12 accumulators)
    /// without spilling; 10 suit AVX-512's 32 (its FMA units want 8 or more in flight).
    /// The probe takes whichever runs faster.
    enum Loop: CaseIterable { case six, ten }

    /// Floating-point operations of one iteration: chains x 16 lanes x 2.
    static func flopPerIteration(_ loop: Loop) -> Int { (loop == .six ? 6 : 10) * 16 * 2 }

    static func run(_ loop: Loop, iterations: Int, seed: Float) -> Float {
        loop == .six ? fmaLoop6(iterations: iterations, seed: seed) : fmaLoop10(iterations: iterations, seed: seed)
    }

    /// `iterations` rounds of 6 independent 16-lane multiply-adds. Returns a value that
    /// depends on every chain, so that none is optimised away.
    @inline(never)
    static func fmaLoop6(iterations: Int, seed: Float) -> Float {
        let a = SIMD16<Float>(repeating: 0.999_999), b = SIMD16<Float>(repeating: seed * 1e-7)
        var c0 = SIMD16<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5
        for _ in 0..<iterations {
            c0 = c0.addingProduct(a, b); c1 = c1.addingProduct(a, b); c2 = c2.addingProduct(a, b)
            c3 = c3.addingProduct(a, b); c4 = c4.addingProduct(a, b); c5 = c5.addingProduct(a, b)
        }
        return ((c0 + c1) + (c2 + c3) + (c4 + c5)).sum()
    }

    /// The same with 10 chains.
    @inline(never)
    static func fmaLoop10(iterations: Int, seed: Float) -> Float {
        let a = SIMD16<Float>(repeating: 0.999_999), b = SIMD16<Float>(repeating: seed * 1e-7)
        var c0 = SIMD16<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4
        var c5 = c0 + 5, c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9
        for _ in 0..<iterations {
            c0 = c0.addingProduct(a, b); c1 = c1.addingProduct(a, b); c2 = c2.addingProduct(a, b)
            c3 = c3.addingProduct(a, b); c4 = c4.addingProduct(a, b); c5 = c5.addingProduct(a, b)
            c6 = c6.addingProduct(a, b); c7 = c7.addingProduct(a, b); c8 = c8.addingProduct(a, b)
            c9 = c9.addingProduct(a, b)
        }
        return ((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7) + (c8 + c9)).sum()
    }

    /// Iterations that take about `seconds` on one thread.
    private static func calibrate(_ loop: Loop, seconds: Double) -> Int {
        var iterations = 100_000
        while true {
            let start = now()
            _ = run(loop, iterations: iterations, seed: 1)
            let elapsed = now() - start
            if elapsed >= seconds / 4 || iterations >= 1 << 34 {
                return max(1, Int(Double(iterations) * seconds / max(elapsed, 1e-9)))
            }
            iterations *= 4
        }
    }

    /// Runs the loop on `threads` threads at once (the caller's included), timed from a
    /// common start to the last thread's end.
    private static func gflops(_ loop: Loop, threads: Int, iterations: Int) -> Double {
        let start = now()
        if threads == 1 {
            _ = run(loop, iterations: iterations, seed: 1)
        } else {
            DispatchQueue.concurrentPerform(iterations: threads) { index in
                _ = run(loop, iterations: iterations, seed: Float(index + 1))
            }
        }
        let elapsed = now() - start
        return Double(threads) * Double(iterations) * Double(flopPerIteration(loop)) / elapsed / 1e9
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
