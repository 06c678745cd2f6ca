#include "dialect.h"

/* Conv2d over NCHW with square kernels, any stride and zero padding, as PyTorch:
 * input [batch, C, H, W], weight [OC, C, K, K], bias [OC], output [batch, OC, OH, OW].
 * Each item computes one value by definition (no im2col): simple, and with no scratch. */

/* One item per output value: bias plus the sum over its window, in (c, ki, kj) order. */
KERNEL conv2d_forward(GLOBAL float* output, GLOBAL const float* input, GLOBAL const float* weight,
                      GLOBAL const float* bias, int batch, int channels, int height, int width,
                      int outChannels, int kernelSize, int stride, int padding, int outHeight, int outWidth)
{
    int index = GLOBAL_ID();
    if (index >= batch * outChannels * outHeight * outWidth) return;
    int ox = index % outWidth, oy = (index / outWidth) % outHeight;
    int oc = (index / (outWidth * outHeight)) % outChannels, b = index / (outWidth * outHeight * outChannels);
    float acc = bias[oc];
    for (int c = 0; c < channels; c++) {
        GLOBAL const float* plane = input + (b * channels + c) * height * width;
        GLOBAL const float* w = weight + (oc * channels + c) * kernelSize * kernelSize;
        for (int ki = 0; ki < kernelSize; ki++) {
            int y = oy * stride + ki - padding;
            if (y < 0 || y >= height) continue;  /* padding reads as zero */
            for (int kj = 0; kj < kernelSize; kj++) {
                int x = ox * stride + kj - padding;
                if (x < 0 || x >= width) continue;
                acc += plane[y * width + x] * w[ki * kernelSize + kj];
            }
        }
    }
    output[index] = acc;
}

/* One item per input value (b, c, y, x): the sum of outputGrad x weight over every
 * output whose window covered it. inputGrad [batch, C, H, W] is overwritten. */
KERNEL conv2d_backward_input(GLOBAL float* inputGrad, GLOBAL const float* outputGrad, GLOBAL const float* weight,
                             int batch, int channels, int height, int width,
                             int outChannels, int kernelSize, int stride, int padding, int outHeight, int outWidth)
{
    int index = GLOBAL_ID();
    if (index >= batch * channels * height * width) return;
    int x = index % width, y = (index / width) % height;
    int c = (index / (width * height)) % channels, b = index / (width * height * channels);
    float acc = 0.0f;
    for (int oc = 0; oc < outChannels; oc++) {
        GLOBAL const float* dy = outputGrad + (b * outChannels + oc) * outHeight * outWidth;
        GLOBAL const float* w = weight + (oc * channels + c) * kernelSize * kernelSize;
        for (int ki = 0; ki < kernelSize; ki++) {
            int ty = y + padding - ki;  /* = oy * stride for the output row that used (y, ki) */
            if (ty < 0 || ty % stride != 0 || ty / stride >= outHeight) continue;
            for (int kj = 0; kj < kernelSize; kj++) {
                int tx = x + padding - kj;
                if (tx < 0 || tx % stride != 0 || tx / stride >= outWidth) continue;
                acc += dy[(ty / stride) * outWidth + tx / stride] * w[ki * kernelSize + kj];
            }
        }
    }
    inputGrad[index] = acc;
}

/* One group of REDUCE_ITEMS items per weight (OC*C*K*K groups) and then per bias (OC
 * more): each item sums a strided share of the batch's output positions, and the group
 * adds the shares in a fixed tree. weightGrad [OC, C, K, K] and biasGrad [OC] are overwritten. */
KERNEL conv2d_backward_weight(GLOBAL float* weightGrad, GLOBAL float* biasGrad, GLOBAL const float* outputGrad,
                              GLOBAL const float* input, int batch, int channels, int height, int width,
                              int outChannels, int kernelSize, int stride, int padding, int outHeight, int outWidth)
{
    LOCAL float scratch[REDUCE_ITEMS];
    int entry = GROUP_ID();
    int weights = outChannels * channels * kernelSize * kernelSize;
    if (entry >= weights + outChannels) return;  /* a whole group: no barrier is left waiting */
    int outPixels = outHeight * outWidth, positions = batch * outPixels;
    float share = 0.0f, total;
    if (entry < weights) {
        int kj = entry % kernelSize, ki = (entry / kernelSize) % kernelSize;
        int c = (entry / (kernelSize * kernelSize)) % channels, oc = entry / (kernelSize * kernelSize * channels);
        for (int p = LOCAL_ID(); p < positions; p += REDUCE_ITEMS) {
            int b = p / outPixels, oy = (p % outPixels) / outWidth, ox = p % outWidth;
            int y = oy * stride + ki - padding, x = ox * stride + kj - padding;
            if (y < 0 || y >= height || x < 0 || x >= width) continue;
            share += outputGrad[(b * outChannels + oc) * outPixels + oy * outWidth + ox]
                   * input[((b * channels + c) * height + y) * width + x];
        }
    } else {
        int oc = entry - weights;
        for (int p = LOCAL_ID(); p < positions; p += REDUCE_ITEMS) {
            int b = p / outPixels;
            share += outputGrad[(b * outChannels + oc) * outPixels + p % outPixels];
        }
    }
    GROUP_SUM(total, share, scratch);
    if (LOCAL_ID() == 0) {
        if (entry < weights) weightGrad[entry] = total; else biasGrad[entry - weights] = total;
    }
}
