/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
/// the counter-based generator of Random123, cuRAND and PyTorch's CUDA dropout.
///
/// A pure function of a 128-bit counter and a 64-bit key: the numbers for one element
/// need no state from the draws before it. Dropout keys it by the run's seed and counts
/// by (element, layer, step), so every backend, and every thread of one, draws the same
/// mask without sharing a stream.
enum Philox4x32 {
    typealias Counter = SIMD4<UInt32>
    typealias Key = SIMD2<UInt32>

    /// The four 32-bit words for `counter` under `key` (10 rounds).
    @inline(__always)
    static func block(counter: Counter, key: Key) -> Counter {
        var c = counter, k = key
        for round in 0..<10 {
            if round > 0 { k &+= Key(0x9E37_79B9, 0xBB67_AE85) }  // the key schedule (Weyl constants)
            let product0 = UInt64(0xD251_1F53) &* UInt64(c[0])
            let product1 = UInt64(0xCD9E_8D57) &* UInt64(c[2])
            c = Counter(UInt32(truncatingIfNeeded: product1 >> 32) ^ c[1] ^ k[0], UInt32(truncatingIfNeeded: product1),
                        UInt32(truncatingIfNeeded: product0 >> 32) ^ c[3] ^ k[1], UInt32(truncatingIfNeeded: product0))
        }
        return c
    }

    /// A 64-bit seed as a key.
    @inline(__always)
    static func key(_ seed: UInt64) -> Key {
        Key(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// A 32-bit word as a float uniform in [0, 1) from its top 24 bits (exact in Float,
    /// so every backend converts it the same way).
    @inline(__always)
    static func unitFloat(_ word: UInt32) -> Float {
        Float(word >> 8) * (1.0 / 16_777_216.0)
    }
}
