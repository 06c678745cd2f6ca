import Foundation
@testable import LeNetKit
import Testing

/// Each layer kernel: forward against its definition, backward against central
/// differences of Σ output·r for a random r, on small random shapes.
@Suite struct KernelGradientTests {
    static let geometries = [
        ConvGeometry(inChannels: 1, outChannels: 3, height: 6, width: 6, kernel: 5, stride: 1, padding: 2),
        ConvGeometry(inChannels: 2, outChannels: 4, height: 7, width: 5, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(inChannels: 3, outChannels: 2, height: 8, width: 8, kernel: 5, stride: 1, padding: 0),
    ]

    /// Two images side by side, as the layer runs slices of a batch.
    static let images = 2

    /// Stride-1 shapes for the kernels that read the image in place: LeNet's two
    /// convolutions, a tiny padded one and a 1x1 with wide rows.
    static let directShapes = [
        ConvGeometry(inChannels: 1, outChannels: 6, height: 28, width: 28, kernel: 5, padding: 2),
        ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 5),
        ConvGeometry(inChannels: 2, outChannels: 1, height: 3, width: 3, kernel: 3, padding: 1),
        ConvGeometry(inChannels: 1, outChannels: 7, height: 5, width: 40, kernel: 1),
        // Fewer output pixels than a block of the channels-in-lanes forward has, and two groups of 16 channels.
        ConvGeometry(inChannels: 3, outChannels: 20, height: 2, width: 2, kernel: 1),
    ]

    /// `count` random stride-1 shapes: kernels 1-5, padding 0-2, 1-4 input channels.
    static func randomStrideOneShapes(_ random: inout TestRandom, count: Int, outChannelsBelow: Int,
                                      extraHeightBelow: Int, extraWidthBelow: Int) -> [ConvGeometry] {
        (0..<count).map { _ in
            let kernel = 1 + random.int(below: 5), padding = random.int(below: 3)
            return ConvGeometry(inChannels: 1 + random.int(below: 4), outChannels: 1 + random.int(below: outChannelsBelow),
                                height: kernel + random.int(below: extraHeightBelow),
                                width: kernel + random.int(below: extraWidthBelow), kernel: kernel, padding: padding)
        }
    }

    /// `kernelRows(reachingInputRow:)` is exactly the kernel rows whose output row lies
    /// inside the output, for every input row: LeNet's shapes, random ones, and padding wider
    /// than the kernel (kernel 1, padding 2).
    @Test func kernelRowsAreThoseWhoseOutputRowExists() {
        var random = TestRandom(seed: 14)
        let shapes = Self.directShapes
            + [ConvGeometry(inChannels: 1, outChannels: 1, height: 4, width: 4, kernel: 1, padding: 2)]
            + Self.randomStrideOneShapes(&random, count: 40, outChannelsBelow: 3, extraHeightBelow: 6, extraWidthBelow: 3)
        for g in shapes {
            for y in 0..<g.height {
                let expected = (0..<g.kernel).filter { ki in (0..<g.outHeight).contains(y + g.padding - ki) }
                #expect(Array(g.kernelRows(reachingInputRow: y)) == expected, "\(g), input row \(y)")
            }
        }
    }

    func convOutput(_ input: [Float], _ weight: [Float], _ bias: [Float], _ g: ConvGeometry) -> [Float] {
        var output = [Float](repeating: 0, count: Self.images * g.outputSize)
        var columns = [Float](repeating: 0, count: Self.images * g.patchSize * g.outPixels)
        var padded = [Float](repeating: 0, count: g.paddedInputSize)
        conv2dForward(output: &output, columns: &columns, padded: &padded, input: input, images: Self.images,
                      weight: weight, bias: bias, g)
        return output
    }

    @Test(arguments: geometries + [ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 5),
                                   ConvGeometry(inChannels: 2, outChannels: 1, height: 5, width: 7, kernel: 3, padding: 1),
                                   ConvGeometry(inChannels: 1, outChannels: 6, height: 28, width: 28, kernel: 5, padding: 2),
                                   ConvGeometry(inChannels: 2, outChannels: 3, height: 9, width: 37, kernel: 7, padding: 3),
                                   ConvGeometry(inChannels: 1, outChannels: 2, height: 4, width: 40, kernel: 1)])
    func im2colMatchesItsReference(g: ConvGeometry) {
        var random = TestRandom(seed: 10)
        let image = random.floats(g.inputSize)
        let rowStride = g.outPixels + 3  // rows apart, as when images sit side by side
        var fast = [Float](repeating: -7, count: g.patchSize * rowStride)
        var reference = fast
        var padded = [Float](repeating: 0, count: g.paddedInputSize)
        im2col(&fast, rowStride: rowStride, image, g, padded: &padded)
        im2colReference(&reference, rowStride: rowStride, image, g)
        #expect(fast == reference)

        // col2im is im2col's adjoint: ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩, and the fast one equals
        // its reference (added onto zeros) bit for bit. Its input sits between margins of NaN:
        // a margin lane that were not masked off would show.
        let y = random.floats(g.patchSize * g.outPixels)
        let margin = [Float](repeating: .nan, count: ConvGeometry.columnGradMargin)
        let withMargins = margin + y + margin
        var folded = [Float](repeating: -7, count: g.inputSize)
        withMargins.withUnsafeBufferPointer { col2im(&folded, $0.baseAddress! + margin.count, g) }
        var foldedReference = [Float](repeating: 0, count: g.inputSize)
        col2imAddReference(&foldedReference, y, g)
        #expect(folded.map(\.bitPattern) == foldedReference.map(\.bitPattern), "\(g)")
        var dense = [Float](repeating: 0, count: g.patchSize * g.outPixels)
        im2col(&dense, image, g, padded: &padded)
        #expect(abs(dot(dense, y) - dot(image, folded)) < 1e-3 * max(1, abs(dot(dense, y))))
    }

    @Test(arguments: geometries)
    func convForwardMatchesDirectConvolution(g: ConvGeometry) {
        var random = TestRandom(seed: 1)
        let input = random.floats(Self.images * g.inputSize), weight = random.floats(g.outChannels * g.patchSize)
        let bias = random.floats(g.outChannels)
        var reference = [Float](repeating: 0, count: Self.images * g.outputSize)
        for image in 0..<Self.images {
            input.withUnsafeBufferPointer { x in
                reference.withUnsafeMutableBufferPointer { y in
                    conv2dForwardReference(output: y.baseAddress! + image * g.outputSize, image: x.baseAddress! + image * g.inputSize,
                                           weight: weight, bias: bias, g)
                }
            }
        }
        #expect(maxRelativeDifference(convOutput(input, weight, bias, g), reference) < 1e-5)
    }

    /// The direct forward (images read in place) against im2col + GEMM, bit for bit, and
    /// against the definition, on stride-1 shapes whose products (output rows 16, 32 or
    /// more columns apart, of which the first OW are kept) hit every tile and every partial
    /// row store of both blockings, LeNet's two convolutions among them; the same for the
    /// channels-in-lanes kernel (channel blocks of 16; blocks of 2 rows x 10 pixels, or of 6
    /// pixels in reading order across row breaks on the narrow blocking; odd heights, narrow
    /// and wide rows, fewer pixels than a block), plain and with its ReLU and 2x2 pooling epilogue.
    @Test(arguments: GemmBlocking.allCases)
    func directForwardMatchesIm2colGemmBitForBit(blocking: GemmBlocking) {
        var random = TestRandom(seed: 12)
        var shapes = Self.directShapes
        shapes += Self.randomStrideOneShapes(&random, count: 16, outChannelsBelow: 40,
                                             extraHeightBelow: 20, extraWidthBelow: 36)
        for g in shapes {
            let image = random.floats(g.inputSize), weight = random.floats(g.outChannels * g.patchSize)
            let bias = random.floats(g.outChannels)
            var viaColumns = [Float](repeating: 0, count: g.outputSize)
            var columns = [Float](repeating: 0, count: g.patchSize * g.outPixels)
            var padded = [Float](repeating: 0, count: g.paddedInputSize)
            conv2dForward(output: &viaColumns, columns: &columns, padded: &padded, input: image, images: 1,
                          weight: weight, bias: bias, g)
            // Garbage around the output shows a write outside it; the source's tail must start zero.
            var direct = [Float](repeating: .nan, count: g.outputSize + 32)
            var source = [Float](repeating: 0, count: g.directSourceSize)
            let offsets = directRowOffsets(g)
            // Both read the weights transposed, then the bias (for 6 channels, A's rows adjacent).
            var laneWeights = [Float](repeating: .nan, count: g.laneWeightsSize)
            prepareChannelsInLanes(&laneWeights, weight: weight, bias: bias, g)
            for _ in 0..<2 {  // twice: the second call reuses the scratch as the layer does
                conv2dForwardDirect(output: &direct, image: image, source: &source, offsets: offsets,
                                    laneWeights: laneWeights, g, blocking: blocking)
            }
            #expect(direct.prefix(g.outputSize).map(\.bitPattern) == viaColumns.map(\.bitPattern), "\(g) \(blocking)")
            // The channels-in-lanes kernel (2 rows x 10 or 6 pixels x 16 channels), the same way;
            // its scratch starts as garbage, as the layer's does after another image.
            var inLanes = [Float](repeating: .nan, count: g.outputSize + 32)
            var scratch = [Float](repeating: .nan, count: g.laneOutputSize)
            source = [Float](repeating: 0, count: g.directSourceSize)
            for _ in 0..<2 {
                conv2dForwardChannelsInLanes(output: &inLanes, image: image, source: &source, offsets: offsets,
                                             laneWeights: laneWeights, scratch: &scratch, g, blocking: blocking)
            }
            #expect(inLanes.prefix(g.outputSize).map(\.bitPattern) == viaColumns.map(\.bitPattern), "\(g) \(blocking) in lanes")
            let inLanesUntouched = inLanes.suffix(32).allSatisfy { $0.isNaN }
            #expect(inLanesUntouched, "\(g): channels in lanes wrote past the output")
            // And with ReLU and 2x2 max pooling in its epilogue: the rectified maxima of the
            // plain output's windows, bit for bit.
            let (pooledHeight, pooledWidth) = (g.outHeight / 2, g.outWidth / 2)
            var expectedPool: [Float] = []
            for c in 0..<g.outChannels {
                for py in 0..<pooledHeight {
                    for px in 0..<pooledWidth {
                        func at(_ dy: Int, _ dx: Int) -> Float {
                            viaColumns[(c * g.outHeight + 2 * py + dy) * g.outWidth + 2 * px + dx]
                        }
                        let best = max(max(at(0, 0), at(0, 1)), max(at(1, 0), at(1, 1)))
                        expectedPool.append(best > 0 ? best : 0)
                    }
                }
            }
            var pooled = [Float](repeating: .nan, count: expectedPool.count + 32)
            conv2dForwardChannelsInLanes(output: &pooled, image: image, source: &source, offsets: offsets,
                                         laneWeights: laneWeights, scratch: &scratch, g, rectifiedPool: true,
                                         blocking: blocking)
            #expect(pooled.prefix(expectedPool.count).map(\.bitPattern) == expectedPool.map(\.bitPattern),
                    "\(g) in lanes, pooled")
            let pooledUntouched = pooled.suffix(32).allSatisfy { $0.isNaN }
            #expect(pooledUntouched, "\(g): the pooled forward wrote past its output")
            // The rows-of-6-channels forward, pooled the same way; its pending rows start as garbage.
            var directPooled = [Float](repeating: .nan, count: expectedPool.count + 32)
            var pending = [Float](repeating: .nan, count: g.directPendingSize)
            conv2dForwardDirect(output: &directPooled, image: image, source: &source, offsets: offsets,
                                laneWeights: laneWeights, g, rectifiedPoolPending: &pending, blocking: blocking)
            #expect(directPooled.prefix(expectedPool.count).map(\.bitPattern) == expectedPool.map(\.bitPattern),
                    "\(g) \(blocking) direct, pooled")
            let directPooledUntouched = directPooled.suffix(32).allSatisfy { $0.isNaN }
            #expect(directPooledUntouched, "\(g): the pooled direct forward wrote past its output")
            let untouched = direct.suffix(32).allSatisfy { $0.isNaN }
            #expect(untouched, "\(g) \(blocking): wrote past the output")
            var reference = [Float](repeating: 0, count: g.outputSize)
            conv2dForwardReference(output: &reference, image: image, weight: weight, bias: bias, g)
            #expect(maxRelativeDifference(Array(direct.prefix(g.outputSize)), reference) < 1e-5, "\(g)")
        }
    }

    @Test(arguments: geometries)
    func convBackwardMatchesFiniteDifferences(g: ConvGeometry) {
        var random = TestRandom(seed: 2)
        let n = Self.images
        var image = random.floats(n * g.inputSize), weight = random.floats(g.outChannels * g.patchSize)
        var bias = random.floats(g.outChannels)
        let r = random.floats(n * g.outputSize)

        var weightGrad = [Float](repeating: 0, count: weight.count), biasGrad = [Float](repeating: 0, count: bias.count)
        var imageGrad = [Float](repeating: 0, count: image.count)
        var columnGrad = [Float](repeating: 0, count: g.columnGradScratchSize)
        var outputGradRows = [Float](repeating: 0, count: n * g.outputSize)
        var columns = [Float](repeating: 0, count: n * g.patchSize * g.outPixels)
        var output = [Float](repeating: 0, count: n * g.outputSize)
        var padded = [Float](repeating: 0, count: g.paddedInputSize)
        conv2dForward(output: &output, columns: &columns, padded: &padded, input: image, images: n,
                      weight: weight, bias: bias, g)
        conv2dBackward(weightGrad: &weightGrad, biasGrad: &biasGrad, inputGrad: &imageGrad, outputGradRows: &outputGradRows,
                       columnGrad: &columnGrad, outputGrad: r, columns: columns, images: n,
                       weight: weight, g)

        let (w, b, x) = (weight, bias, image)
        #expect(gradientMismatch(weightGrad, numericGradient(&weight) { dot(convOutput(x, $0, b, g), r) }) == nil)
        #expect(gradientMismatch(biasGrad, numericGradient(&bias) { dot(convOutput(x, w, $0, g), r) }) == nil)
        #expect(gradientMismatch(imageGrad, numericGradient(&image) { dot(convOutput($0, w, b, g), r) }) == nil)
    }

    /// The weight gradient without columns (`conv2dAddWeightGradientInLanes`): bit for bit its
    /// scalar reference's chains, on either register block and whatever the sums held before;
    /// and, unpacked, the finite differences of Σ output·r over two images.
    @Test(arguments: GemmBlocking.allCases)
    func laneWeightGradientMatchesItsReferenceAndFiniteDifferences(blocking: GemmBlocking) {
        var random = TestRandom(seed: 31)
        var shapes = [ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 5),
                      ConvGeometry(inChannels: 1, outChannels: 6, height: 28, width: 28, kernel: 5, padding: 2),
                      ConvGeometry(inChannels: 2, outChannels: 20, height: 7, width: 9, kernel: 3, padding: 1),
                      ConvGeometry(inChannels: 1, outChannels: 3, height: 4, width: 5, kernel: 2)]  // 4 weight rows
        shapes += Self.randomStrideOneShapes(&random, count: 8, outChannelsBelow: 40,
                                             extraHeightBelow: 12, extraWidthBelow: 20)
        let n = Self.images
        for g in shapes {
            let images = random.floats(n * g.inputSize), outputGrad = random.floats(n * g.outputSize)
            let before = random.floats(g.laneWeightsSize)
            var sums = before, expected = before
            var source = [Float](repeating: 0, count: g.directSourceSize)
            var transposed = [Float](repeating: .nan, count: g.outPixels * 16)
            let offsets = directRowOffsets(g)
            for i in 0..<n {
                conv2dAddWeightGradientInLanes(&sums, outputGrad: Array(outputGrad[(i * g.outputSize)...]),
                                               image: Array(images[(i * g.inputSize)...]), source: &source,
                                               offsets: offsets, transposed: &transposed, g, blocking: blocking)
                conv2dAddWeightGradientInLanesReference(&expected, outputGrad: Array(outputGrad[(i * g.outputSize)...]),
                                                        image: Array(images[(i * g.inputSize)...]), g)
            }
            #expect(sums.map(\.bitPattern) == expected.map(\.bitPattern), "\(g) \(blocking)")
        }
        for g in Self.geometries where g.stride == 1 {
            let image = random.floats(n * g.inputSize)
            var weight = random.floats(g.outChannels * g.patchSize), bias = random.floats(g.outChannels)
            let r = random.floats(n * g.outputSize)
            var sums = [Float](repeating: 0, count: g.laneWeightsSize)
            var source = [Float](repeating: 0, count: g.directSourceSize)
            var transposed = [Float](repeating: 0, count: g.outPixels * 16)
            for i in 0..<n {
                conv2dAddWeightGradientInLanes(&sums, outputGrad: Array(r[(i * g.outputSize)...]),
                                               image: Array(image[(i * g.inputSize)...]), source: &source,
                                               offsets: directRowOffsets(g), transposed: &transposed, g, blocking: blocking)
            }
            var weightGrad = [Float](repeating: 0, count: weight.count), biasGrad = [Float](repeating: 0, count: bias.count)
            unpackWeightGradientInLanes(weightGrad: &weightGrad, biasGrad: &biasGrad, sums: sums, g)
            let (w, b, x) = (weight, bias, image)
            #expect(gradientMismatch(weightGrad, numericGradient(&weight) { dot(convOutput(x, $0, b, g), r) }) == nil, "\(g)")
            #expect(gradientMismatch(biasGrad, numericGradient(&bias) { dot(convOutput(x, w, $0, g), r) }) == nil, "\(g)")
        }
    }

    /// `transposed16` (16 x 16 rounds) and `transposed8x8` (AVX2's 8 x 8 blocks): lane j of
    /// result i is lane i of vector j, for distinct values in every lane.
    @Test func transposesMoveLaneIOfVectorJToLaneJOfResultI() {
        var random = TestRandom(seed: 44)
        let values = random.floats(256)
        /// Fills `size` vectors of `size` lanes (a tuple of vectors, `empty`) from `values` in
        /// order, transposes them, and expects result i's lane j to be vector j's lane i.
        func check<Vectors>(_ empty: Vectors, size: Int, _ transpose: (Vectors) -> Vectors) {
            var vectors = empty
            withUnsafeMutableBytes(of: &vectors) { raw in
                let floats = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                for i in 0..<size * size { floats[i] = values[i] }
            }
            withUnsafeBytes(of: transpose(vectors)) { raw in
                let floats = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                for i in 0..<size {
                    for j in 0..<size {
                        #expect(floats[i * size + j].bitPattern == values[j * size + i].bitPattern,
                                "\(size) x \(size): result \(i) lane \(j)")
                    }
                }
            }
        }
        let sixteen: SixteenVectors = (Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(),
                                       Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector())
        check(sixteen, size: 16, transposed16)
        let eight: EightVectors = (Eight(), Eight(), Eight(), Eight(), Eight(), Eight(), Eight(), Eight())
        check(eight, size: 8, transposed8x8)
    }

    /// `transposeToLanes`: pixel p's lane l is channel first + l's gradient at p, zero past the
    /// channels; blocks of 16 (or 8) pixels, an overlapping last block, and fewer than 16 pixels,
    /// on either blocking. `transposeOutOfLanes` undoes it.
    @Test(arguments: GemmBlocking.allCases)
    func transposeToLanesPutsEachPixelsChannelsInLanes(blocking: GemmBlocking) {
        var random = TestRandom(seed: 43)
        for (channels, height, width) in [(16, 10, 10), (6, 28, 28), (20, 3, 5), (40, 4, 4), (1, 1, 1), (17, 7, 9),
                                          (12, 5, 7), (9, 2, 9)] {
            let g = ConvGeometry(inChannels: 1, outChannels: channels, height: height, width: width, kernel: 1)
            let outputGrad = random.floats(g.outputSize)
            var transposed = [Float](repeating: .nan, count: g.outPixels * 16)
            for first in stride(from: 0, to: channels, by: 16) {
                transposeToLanes(&transposed, outputGrad: outputGrad, firstChannel: first, g, blocking: blocking)
                let expected = (0..<g.outPixels * 16).map { i -> Float in
                    let pixel = i / 16, channel = first + i % 16
                    return channel < channels ? outputGrad[channel * g.outPixels + pixel] : 0
                }
                #expect(transposed.map(\.bitPattern) == expected.map(\.bitPattern), "\(g) from \(first) \(blocking)")
                // And back out of the lanes, into rows `stride` floats apart: the channels' own
                // values, and nothing written past them.
                let rows = min(16, channels - first), stride = g.outPixels + 3
                var back = [Float](repeating: .nan, count: 16 * stride)
                transposeOutOfLanes(&back, rowStride: stride, transposed, rowStride: 16, rows: rows, count: g.outPixels,
                                    blocking: blocking)
                for lane in 0..<16 {
                    for pixel in 0..<stride {
                        let value = back[lane * stride + pixel]
                        if lane < rows && pixel < g.outPixels {
                            #expect(value.bitPattern == outputGrad[(first + lane) * g.outPixels + pixel].bitPattern)
                        } else {
                            #expect(value.isNaN, "\(g): wrote past channel \(first + lane)'s row")
                        }
                    }
                }
            }
        }
    }

    /// The input gradient with the channels in the lanes (`conv2dInputGradientInLanes`): bit for
    /// bit its scalar reference's chains on either register block (more than 16 channels
    /// included, whose groups add up), overwriting what was there; the im2col way's sums to
    /// rounding; and the finite differences of Σ output·r.
    @Test(arguments: GemmBlocking.allCases)
    func laneInputGradientMatchesItsReferenceAndFiniteDifferences(blocking: GemmBlocking) {
        var random = TestRandom(seed: 41)
        var shapes = [ConvGeometry(inChannels: 6, outChannels: 16, height: 14, width: 14, kernel: 5),  // conv2
                      ConvGeometry(inChannels: 2, outChannels: 20, height: 8, width: 8, kernel: 5, padding: 2),
                      ConvGeometry(inChannels: 1, outChannels: 5, height: 5, width: 16, kernel: 5),  // rows of 12
                      ConvGeometry(inChannels: 3, outChannels: 33, height: 6, width: 5, kernel: 5, padding: 1)]
        shapes += (0..<8).map { _ in
            let padding = random.int(below: 3)
            return ConvGeometry(inChannels: 1 + random.int(below: 4), outChannels: 1 + random.int(below: 40),
                                height: 5 + random.int(below: 12), width: 5 - 2 * padding + random.int(below: 12),
                                kernel: 5, padding: padding)
        }
        for g in shapes {
            #expect(inputGradientInLanesFits(g), "\(g)")
            let weight = random.floats(g.outChannels * g.patchSize), bias = random.floats(g.outChannels)
            let outputGrad = random.floats(g.outputSize)
            var laneWeights = [Float](repeating: .nan, count: g.laneWeightsSize)
            prepareChannelsInLanes(&laneWeights, weight: weight, bias: bias, g)
            var transposed = [Float](repeating: .nan, count: g.outPixels * 16)
            var inputGrad = [Float](repeating: .nan, count: g.inputSize)
            for first in stride(from: 0, to: g.outChannels, by: 16) {
                transposeToLanes(&transposed, outputGrad: outputGrad, firstChannel: first, g, blocking: blocking)
                conv2dInputGradientInLanes(&inputGrad, transposed: transposed, laneWeights: laneWeights,
                                           firstChannel: first, accumulate: first > 0, g, blocking: blocking)
            }
            var expected = [Float](repeating: .nan, count: g.inputSize)
            conv2dInputGradientInLanesReference(&expected, outputGrad: outputGrad, weight: weight, g)
            #expect(inputGrad.map(\.bitPattern) == expected.map(\.bitPattern), "\(g) \(blocking)")
            var columnGrad = [Float](repeating: 0, count: g.columnGradScratchSize)
            var byColumns = [Float](repeating: 0, count: g.inputSize)
            conv2dInputGradient(&byColumns, columnGrad: &columnGrad, outputGrad: outputGrad, images: 1, weight: weight, g)
            #expect(maxRelativeDifference(inputGrad, byColumns) < 1e-5, "\(g)")
        }
        // Too wide a row, or another kernel: the im2col way.
        #expect(!inputGradientInLanesFits(ConvGeometry(inChannels: 1, outChannels: 16, height: 8, width: 17, kernel: 5)))
        #expect(!inputGradientInLanesFits(ConvGeometry(inChannels: 1, outChannels: 16, height: 8, width: 8, kernel: 3)))

        let n = Self.images
        for g in Self.geometries + [shapes[0]] where inputGradientInLanesFits(g) {
            var image = random.floats(n * g.inputSize)
            let weight = random.floats(g.outChannels * g.patchSize), bias = random.floats(g.outChannels)
            let r = random.floats(n * g.outputSize)
            var laneWeights = [Float](repeating: 0, count: g.laneWeightsSize)
            prepareChannelsInLanes(&laneWeights, weight: weight, bias: bias, g)
            var transposed = [Float](repeating: 0, count: g.outPixels * 16)
            var imageGrad = [Float](repeating: 0, count: n * g.inputSize)
            imageGrad.withUnsafeMutableBufferPointer { imageGrad in
                for i in 0..<n {
                    for first in stride(from: 0, to: g.outChannels, by: 16) {
                        transposeToLanes(&transposed, outputGrad: Array(r[(i * g.outputSize)...]), firstChannel: first, g)
                        conv2dInputGradientInLanes(imageGrad.baseAddress! + i * g.inputSize, transposed: transposed,
                                                   laneWeights: laneWeights, firstChannel: first, accumulate: first > 0,
                                                   g, blocking: blocking)
                    }
                }
            }
            #expect(gradientMismatch(imageGrad, numericGradient(&image) { dot(convOutput($0, weight, bias, g), r) }) == nil,
                    "\(g)")
        }
    }

    /// The weight gradient without columns, pixels in the lanes (`conv2dAddWeightGradientDirect`):
    /// the definition's sums over two images, and the same bits on either register block.
    @Test func directWeightGradientMatchesTheDefinitionOnEitherBlocking() {
        var random = TestRandom(seed: 32)
        var shapes = Self.directShapes
        shapes += Self.randomStrideOneShapes(&random, count: 8, outChannelsBelow: 20,
                                             extraHeightBelow: 12, extraWidthBelow: 36)
        let n = Self.images
        for g in shapes {
            let images = random.floats(n * g.inputSize), outputGrad = random.floats(n * g.outputSize)
            var expectedWeights = [Float](repeating: 0, count: g.outChannels * g.patchSize)
            var expectedBias = [Float](repeating: 0, count: g.outChannels)
            conv2dWeightGradientReference(weightGrad: &expectedWeights, biasGrad: &expectedBias, outputGrad: outputGrad,
                                          input: images, images: n, g)
            var results: [[Float]] = []
            for blocking in GemmBlocking.allCases {
                var weightGrad = [Float](repeating: 0, count: expectedWeights.count)
                var biasGrad = [Float](repeating: 0, count: g.outChannels)
                var source = [Float](repeating: 0, count: g.directSourceSize)
                var pitched = [Float](repeating: .nan, count: g.outChannels * g.outHeight * g.directPitch)
                for i in 0..<n {
                    conv2dAddWeightGradientDirect(weightGrad: &weightGrad, biasGrad: &biasGrad,
                                                  outputGrad: Array(outputGrad[(i * g.outputSize)...]),
                                                  image: Array(images[(i * g.inputSize)...]), source: &source,
                                                  offsets: directRowOffsets(g), pitched: &pitched, g, blocking: blocking)
                }
                #expect(maxRelativeDifference(weightGrad, expectedWeights) < 1e-5, "\(g) \(blocking)")
                #expect(maxRelativeDifference(biasGrad, expectedBias) < 1e-5, "\(g) \(blocking)")
                results.append(weightGrad + biasGrad)
            }
            #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern), "\(g): the blockings differ")
        }
    }

    @Test func linearMatchesDefinitionAndFiniteDifferences() {
        var random = TestRandom(seed: 3)
        let batch = 5, inFeatures = 19, outFeatures = 7
        var input = random.floats(batch * inFeatures), weight = random.floats(outFeatures * inFeatures)
        var bias = random.floats(outFeatures)
        let r = random.floats(batch * outFeatures)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: batch * outFeatures)
            linearForward(output: &y, input: x, weight: w, bias: b, batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
            return y
        }
        // y[n, o] = b[o] + Σ_i x[n, i]·w[o, i]
        var expected = [Float](repeating: 0, count: batch * outFeatures)
        for n in 0..<batch {
            for o in 0..<outFeatures {
                var sum = Double(bias[o])
                for i in 0..<inFeatures { sum += Double(input[n * inFeatures + i]) * Double(weight[o * inFeatures + i]) }
                expected[n * outFeatures + o] = Float(sum)
            }
        }
        #expect(maxRelativeDifference(forward(input, weight, bias), expected) < 1e-5)

        var weightGrad = [Float](repeating: 0, count: weight.count), biasGrad = [Float](repeating: 0, count: bias.count)
        var inputGrad = [Float](repeating: 0, count: input.count)
        linearBackward(weightGrad: &weightGrad, biasGrad: &biasGrad, inputGrad: &inputGrad, outputGrad: r, input: input,
                       weight: weight, batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
        let (x, w, b) = (input, weight, bias)
        #expect(gradientMismatch(weightGrad, numericGradient(&weight) { dot(forward(x, $0, b), r) }) == nil)
        #expect(gradientMismatch(biasGrad, numericGradient(&bias) { dot(forward(x, w, $0), r) }) == nil)
        #expect(gradientMismatch(inputGrad, numericGradient(&input) { dot(forward($0, w, b), r) }) == nil)
    }

    // Rows of 16 inputs or more take 8-window SIMD blocks in one row pair: 16 (one block),
    // 18 and 28 (overlapping blocks), 34 (two blocks and an overlap). Rows of 8 to 14 take
    // 4-window blocks in two row pairs at once: 8 (one block), 10 and 12 (overlapping), with
    // an even (4, 12) or odd (6, 8; 10, 10) number of row pairs. Narrower rows: scalar.
    @Test(arguments: [(6, 4), (28, 28), (10, 10), (4, 18), (2, 2), (4, 16), (2, 34), (6, 8), (4, 12), (2, 14)])
    func maxPoolPicksMaximaAndRoutesGradients(height: Int, width: Int) {
        var random = TestRandom(seed: 4)
        let planes = 3, outCount = planes * (height / 2) * (width / 2)
        // Distinct values at least 0.01 apart, so a ±h step never changes a window's maximum.
        var input = (0..<(planes * height * width)).map { Float($0) * 0.01 - 5 }
        random.generator.shuffle(&input)
        let r = random.floats(outCount)
        var choice = [UInt8](repeating: 0, count: outCount)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: outCount)
            maxPool2x2Forward(output: &y, choice: &choice, input: x, planes: planes, height: height, width: width)
            return y
        }
        let y = forward(input)
        var expected = [Float](repeating: 0, count: outCount)
        maxPoolForwardReference(output: &expected, input: input, planes: planes, height: height, width: width, size: 2)
        #expect(y == expected)
        // The reference is the definition: each output is the largest of its window.
        let ow = width / 2
        for p in 0..<planes {
            for oy in 0..<(height / 2) {
                for ox in 0..<ow {
                    let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map { input[p * height * width + (2 * oy + $0.0) * width + 2 * ox + $0.1] }
                    #expect(expected[(p * (height / 2) + oy) * ow + ox] == window.max())
                }
            }
        }
        var inputGrad = [Float](repeating: 0, count: input.count)
        _ = forward(input)
        maxPool2x2Backward(inputGrad: &inputGrad, outputGrad: r, choice: choice, planes: planes, height: height, width: width)
        #expect(gradientMismatch(inputGrad, numericGradient(&input, h: 1e-3) { dot(forward($0), r) }) == nil)
        var referenceGrad = [Float](repeating: 0, count: input.count)
        maxPoolBackwardReference(inputGrad: &referenceGrad, outputGrad: r, input: input, output: y,
                                 planes: planes, height: height, width: width, size: 2)
        #expect(inputGrad == referenceGrad)
    }

    @Test(arguments: [(6, 4), (28, 28), (10, 10), (2, 18), (6, 8)])
    func rectifyingMaxPoolIsReLUThenMaxPool(height: Int, width: Int) {
        var random = TestRandom(seed: 14)
        let planes = 2, inCount = planes * height * width, outCount = inCount / 4
        var input = (0..<inCount).map { Float($0) * 0.01 - Float(inCount) * 0.005 }  // distinct, half negative
        random.generator.shuffle(&input)
        input[0] = 0; input[1] = -0.5  // a window whose maximum is exactly 0 is cut too
        let r = random.floats(outCount)
        var fused = [Float](repeating: 0, count: outCount), choice = [UInt8](repeating: 0, count: outCount)
        maxPool2x2Forward(output: &fused, choice: &choice, input: input, planes: planes, height: height, width: width,
                          rectify: true)
        var rectified = [Float](repeating: 0, count: inCount), pooled = [Float](repeating: 0, count: outCount)
        reluForward(output: &rectified, input: input, count: inCount)
        maxPoolForwardReference(output: &pooled, input: rectified, planes: planes, height: height, width: width, size: 2)
        #expect(fused == pooled)

        var fusedGrad = [Float](repeating: 9, count: inCount)
        maxPool2x2Backward(inputGrad: &fusedGrad, outputGrad: r, choice: choice, planes: planes, height: height, width: width)
        var poolGrad = [Float](repeating: 0, count: inCount), separateGrad = [Float](repeating: 0, count: inCount)
        maxPoolBackwardReference(inputGrad: &poolGrad, outputGrad: r, input: rectified, output: pooled,
                                 planes: planes, height: height, width: width, size: 2)
        reluBackward(inputGrad: &separateGrad, outputGrad: poolGrad, output: rectified, count: inCount)
        #expect(fusedGrad == separateGrad)
    }

    @Test func maxPoolTiesGoToTheFirstMaximum() {
        for input: [Float] in [[1, 1, 1, 1], [0, 2, 2, 2], [0, 1, 3, 3]] {
            var output: [Float] = [0], choice: [UInt8] = [9], inputGrad = [Float](repeating: 9, count: 4)
            maxPool2x2Forward(output: &output, choice: &choice, input: input, planes: 1, height: 2, width: 2)
            maxPool2x2Backward(inputGrad: &inputGrad, outputGrad: [5], choice: choice, planes: 1, height: 2, width: 2)
            let first = input.firstIndex(of: input.max()!)!
            #expect(inputGrad == (0..<4).map { $0 == first ? 5 : 0 })
        }
        let input: [Float] = [1, 1, 1, 1]
        var referenceGrad = [Float](repeating: 9, count: 4)
        maxPoolBackwardReference(inputGrad: &referenceGrad, outputGrad: [5], input: input, output: [1],
                                 planes: 1, height: 2, width: 2, size: 2)
        #expect(referenceGrad == [5, 0, 0, 0])
    }

    /// The same ties through the SIMD paths: 8 windows of a 2x16 plane (one 8-window block)
    /// and of a 4x8 plane (one 4-window block in each of two row pairs), each window with its
    /// own pattern of equal values (all four, three, all zero, all negative, the bottom pair,
    /// a pair across rows).
    @Test(arguments: [(2, 16, false), (2, 16, true), (4, 8, false), (4, 8, true)])
    func simdMaxPoolTiesGoToTheFirstMaximum(height: Int, width: Int, rectify: Bool) {
        let windows: [[Float]] = [[1, 1, 1, 1], [0, 2, 2, 2], [0, 0, 0, 0], [-1, -1, -2, -1],
                                  [0, 1, 3, 3], [4, 0, 4, 0], [0, 5, 0, 5], [2, 1, 0, 2]]
        let ow = width / 2
        // Window w sits at row pair w / ow, column w % ow; its inputs in [a b; c d] order.
        func inputIndices(_ w: Int) -> [Int] {
            let top = 2 * (w / ow) * width + 2 * (w % ow)
            return [top, top + 1, top + width, top + width + 1]
        }
        var input = [Float](repeating: 0, count: height * width)
        for (w, window) in windows.enumerated() {
            for (index, value) in zip(inputIndices(w), window) { input[index] = value }
        }
        var output = [Float](repeating: 0, count: 8), choice = [UInt8](repeating: 9, count: 8)
        maxPool2x2Forward(output: &output, choice: &choice, input: input, planes: 1, height: height, width: width,
                          rectify: rectify)
        var inputGrad = [Float](repeating: 9, count: input.count)
        maxPool2x2Backward(inputGrad: &inputGrad, outputGrad: (1...8).map(Float.init), choice: choice,
                           planes: 1, height: height, width: width)
        for (w, window) in windows.enumerated() {
            let best = window.max()!, cut = rectify && !(best > 0)
            #expect(output[w] == (rectify ? max(best, 0) : best), "window \(w)")
            let first = window.firstIndex(of: best)!
            #expect(inputIndices(w).map { inputGrad[$0] } == (0..<4).map { !cut && $0 == first ? Float(w + 1) : 0 },
                    "window \(w) \(window)")
        }
    }

    @Test func reluForwardAndBackward() {
        var random = TestRandom(seed: 5)
        // Keep entries away from the kink at 0, where the derivative is undefined.
        var input = random.floats(37).map { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }
        let r = random.floats(37)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: x.count)
            reluForward(output: &y, input: x, count: x.count)
            return y
        }
        let y = forward(input)
        #expect(y == input.map { max($0, 0) })
        var inputGrad = [Float](repeating: 0, count: input.count)
        reluBackward(inputGrad: &inputGrad, outputGrad: r, output: y, count: y.count)
        #expect(gradientMismatch(inputGrad, numericGradient(&input) { dot(forward($0), r) }) == nil)
    }

    @Test func batchNormTrainingForwardNormalisesAndMatchesFiniteDifferences() {
        var random = TestRandom(seed: 6)
        let shape = BatchNormShape(batch: 3, channels: 2, pixels: 5), count = 30
        var input = random.floats(count), gamma = random.floats(2, in: 0.5...1.5), beta = random.floats(2)
        let r = random.floats(count)
        func forward(_ x: [Float], _ g: [Float], _ b: [Float]) -> (y: [Float], xhat: [Float], invStd: [Float]) {
            var y = [Float](repeating: 0, count: count), xhat = y, invStd: [Float] = [0, 0]
            var mean: [Float] = [0, 0], variance: [Float] = [1, 1]
            batchNormTrainingForward(output: &y, normalized: &xhat, inverseStd: &invStd, input: x, gamma: g, beta: b,
                                     runningMean: &mean, runningVar: &variance, momentum: 0.1, epsilon: 1e-5, shape)
            return (y, xhat, invStd)
        }
        let (_, xhat, invStd) = forward(input, gamma, beta)
        // x̂ has mean 0 and (biased) variance ≈ 1 per channel.
        for c in 0..<2 {
            let values = (0..<3).flatMap { b in (0..<5).map { xhat[(b * 2 + c) * 5 + $0] } }
            let mean = values.reduce(0, +) / 15
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 15
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-3)
        }
        var inputGrad = [Float](repeating: 0, count: count), gammaGrad: [Float] = [0, 0], betaGrad: [Float] = [0, 0]
        batchNormBackward(inputGrad: &inputGrad, gammaGrad: &gammaGrad, betaGrad: &betaGrad, outputGrad: r,
                          normalized: xhat, inverseStd: invStd, gamma: gamma, shape)
        let (x, g, b) = (input, gamma, beta)
        #expect(gradientMismatch(inputGrad, numericGradient(&input, h: 1e-3) { dot(forward($0, g, b).y, r) }) == nil)
        #expect(gradientMismatch(gammaGrad, numericGradient(&gamma) { dot(forward(x, $0, b).y, r) }) == nil)
        #expect(gradientMismatch(betaGrad, numericGradient(&beta) { dot(forward(x, g, $0).y, r) }) == nil)
    }

    @Test func batchNormRunningStatisticsFollowPyTorch() {
        // One channel, values 1...4: mean 2.5, biased variance 1.25, unbiased 5/3.
        let input: [Float] = [1, 2, 3, 4]
        var y = [Float](repeating: 0, count: 4), xhat = y, invStd: [Float] = [0]
        var mean: [Float] = [0], variance: [Float] = [1]
        batchNormTrainingForward(output: &y, normalized: &xhat, inverseStd: &invStd, input: input, gamma: [2], beta: [1],
                                 runningMean: &mean, runningVar: &variance, momentum: 0.1, epsilon: 1e-5,
                                 BatchNormShape(batch: 2, channels: 1, pixels: 2))
        #expect(abs(mean[0] - 0.25) < 1e-6)
        #expect(abs(variance[0] - (0.9 + 0.1 * 5 / 3)) < 1e-6)
        #expect(abs(invStd[0] - 1 / (1.25 + 1e-5).squareRoot()) < 1e-6)
        // Evaluation uses the running statistics: y = 2·(x − 0.25)/√(var + ε) + 1.
        var evalOut = [Float](repeating: 0, count: 4)
        batchNormInferenceForward(output: &evalOut, input: input, gamma: [2], beta: [1], runningMean: mean,
                                  runningVar: variance, epsilon: 1e-5, BatchNormShape(batch: 2, channels: 1, pixels: 2))
        for i in 0..<4 {
            #expect(abs(evalOut[i] - (2 * (input[i] - 0.25) / (variance[0] + 1e-5).squareRoot() + 1)) < 1e-5)
        }
    }

    @Test func dropoutMaskKeepsAboutHalfAndScalesTheRest() {
        var mask = [Float](repeating: -1, count: 10_001)  // not a multiple of 4: a partial last block
        let key = StepKey(seed: 8, step: 3)
        dropoutMask(&mask, count: mask.count, p: 0.5, key: key, layer: 0)
        #expect(Set(mask) == [0, 2])
        let kept = mask.filter { $0 != 0 }.count
        #expect(abs(kept - 5_000) < 300)  // ±6σ of Binomial(10000, 0.5)
        // The same key draws the same mask; another step, layer or seed another one.
        var again = [Float](repeating: 0, count: mask.count)
        dropoutMask(&again, count: again.count, p: 0.5, key: key, layer: 0)
        #expect(again == mask)
        for (otherKey, layer) in [(StepKey(seed: 8, step: 4), 0), (key, 1), (StepKey(seed: 9, step: 3), 0)] {
            dropoutMask(&again, count: again.count, p: 0.5, key: otherKey, layer: layer)
            let same = zip(again, mask).filter { $0 == $1 }.count
            #expect(abs(same - 5_000) < 300, "\(otherKey) layer \(layer): masks agree on \(same) of 10,001")
        }
        // Element i is word i % 4 of block i / 4: a prefix of a longer mask is the shorter mask.
        var short = [Float](repeating: 0, count: 7)
        dropoutMask(&short, count: 7, p: 0.5, key: key, layer: 0)
        #expect(short == Array(mask.prefix(7)))
    }

    /// Random123's known-answer vectors for Philox4x32-10 (tests/kat_vectors).
    @Test func philoxMatchesTheKnownAnswers() {
        let vectors: [(counter: SIMD4<UInt32>, key: SIMD2<UInt32>, expected: SIMD4<UInt32>)] = [
            (.init(0, 0, 0, 0), .init(0, 0), .init(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8)),
            (.init(repeating: 0xFFFF_FFFF), .init(repeating: 0xFFFF_FFFF), .init(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD)),
            (.init(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), .init(0xA409_3822, 0x299F_31D0),
             .init(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1)),
        ]
        for vector in vectors {
            #expect(Philox4x32.block(counter: vector.counter, key: vector.key) == vector.expected)
        }
        #expect(Philox4x32.unitFloat(0) == 0)
        #expect(Philox4x32.unitFloat(.max) < 1)
    }

    @Test func softmaxCrossEntropyMatchesDefinitionAndFiniteDifferences() {
        var random = TestRandom(seed: 9)
        let batch = 4, classes = 10
        var logits = random.floats(batch * classes, in: -3...3)
        let labels: [Int32] = [3, 0, 9, 5]
        func loss(_ z: [Float]) -> Double {
            Double(softmaxCrossEntropy(logitsGrad: nil, logits: z, labels: labels, batch: batch, classes: classes).loss)
        }
        // −log softmax(z)[label], averaged.
        var expected = 0.0
        for b in 0..<batch {
            let row = logits[(b * classes)..<((b + 1) * classes)].map(Double.init)
            expected += -(row[Int(labels[b])] - log(row.map { exp($0) }.reduce(0, +)))
        }
        #expect(abs(loss(logits) - expected / Double(batch)) < 1e-5)
        var grad = [Float](repeating: 0, count: logits.count)
        let result = softmaxCrossEntropy(logitsGrad: &grad, logits: logits, labels: labels, batch: batch, classes: classes)
        let argmaxes = (0..<batch).map { b in (0..<classes).max { logits[b * classes + $0] < logits[b * classes + $1] }! }
        #expect(result.correct == zip(argmaxes, labels).filter { $0 == Int($1) }.count)
        #expect(gradientMismatch(grad, numericGradient(&logits, h: 1e-2, loss), atol: 1e-4) == nil)
    }
}

extension ConvGeometry: CustomTestStringConvertible {
    public var testDescription: String {
        "C\(inChannels)→\(outChannels) \(height)x\(width) k\(kernel) s\(stride) p\(padding)"
    }
}
