#include "dialect.h"

/* ReLU, products and dropout: one item per value of `count`. */

KERNEL relu_forward(GLOBAL float* output, GLOBAL const float* input, int count)
{
    int i = GLOBAL_ID();
    if (i >= count) return;
    output[i] = input[i] > 0.0f ? input[i] : 0.0f;
}

/* dx = dy where the ReLU's output was positive, else 0. */
KERNEL relu_backward(GLOBAL float* inputGrad, GLOBAL const float* outputGrad, GLOBAL const float* output, int count)
{
    int i = GLOBAL_ID();
    if (i >= count) return;
    inputGrad[i] = output[i] > 0.0f ? outputGrad[i] : 0.0f;
}

/* output = a * b: dropout's backward (dx = dy * mask). */
KERNEL multiply(GLOBAL float* output, GLOBAL const float* a, GLOBAL const float* b, int count)
{
    int i = GLOBAL_ID();
    if (i >= count) return;
    output[i] = a[i] * b[i];
}

/* Philox4x32-10 (Salmon et al., SC 2011), as Engine/Philox.swift: `c` [4] becomes the
 * four words for counter c under key (key0, key1). */
DEVICE_FUNCTION void philox4x32_10(u32* c, u32 key0, u32 key1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) { key0 += 0x9E3779B9u; key1 += 0xBB67AE85u; }  /* the key schedule (Weyl constants) */
        u64 product0 = (u64)0xD2511F53u * c[0], product1 = (u64)0xCD9E8D57u * c[2];
        u32 c1 = c[1], c3 = c[3];
        c[0] = (u32)(product1 >> 32) ^ c1 ^ key0;
        c[1] = (u32)product1;
        c[2] = (u32)(product0 >> 32) ^ c3 ^ key1;
        c[3] = (u32)product0;
    }
}

/* Inverted dropout, training forward: one item per 4 values (one Philox block). Value i
 * takes word i % 4 of the block with counter (i / 4, layer, step low, step high) under
 * the run's seed, exactly as the CPU's dropoutMask: the same mask on every backend.
 * mask [count] = 0 where the word's uniform is below p, else keepScale (1/(1-p), from the
 * host so that it rounds as the CPU's); output = input * mask. */
KERNEL dropout_forward(GLOBAL float* output, GLOBAL float* mask, GLOBAL const float* input, int count,
                       float p, float keepScale, u32 seedLow, u32 seedHigh, u32 stepLow, u32 stepHigh, u32 layer)
{
    int block = GLOBAL_ID();
    if (block * 4 >= count) return;
    u32 words[4] = { (u32)block, layer, stepLow, stepHigh };
    philox4x32_10(words, seedLow, seedHigh);
    for (int lane = 0; lane < 4 && block * 4 + lane < count; lane++) {
        int i = block * 4 + lane;
        float uniform = (float)(words[lane] >> 8) * (1.0f / 16777216.0f);  /* top 24 bits: exact */
        float m = uniform < p ? 0.0f : keepScale;
        mask[i] = m;
        output[i] = input[i] * m;
    }
}
