#include "dialect.h"

/* Fully-connected layer: input [batch, in], weight [out, in] as PyTorch stores it,
 * bias [out], output [batch, out]. Each item sums in index order. */

/* One item per output (b, o): bias + input row . weight row. */
KERNEL linear_forward(GLOBAL float* output, GLOBAL const float* input, GLOBAL const float* weight,
                      GLOBAL const float* bias, int batch, int inFeatures, int outFeatures)
{
    int index = GLOBAL_ID();
    if (index >= batch * outFeatures) return;
    int o = index % outFeatures, b = index / outFeatures;
    GLOBAL const float* x = input + b * inFeatures;
    GLOBAL const float* w = weight + o * inFeatures;
    float acc = bias[o];
    for (int i = 0; i < inFeatures; i++) acc += x[i] * w[i];
    output[index] = acc;
}

/* One item per input (b, i): inputGrad [batch, in] = outputGrad . weight. */
KERNEL linear_backward_input(GLOBAL float* inputGrad, GLOBAL const float* outputGrad, GLOBAL const float* weight,
                             int batch, int inFeatures, int outFeatures)
{
    int index = GLOBAL_ID();
    if (index >= batch * inFeatures) return;
    int i = index % inFeatures, b = index / inFeatures;
    GLOBAL const float* dy = outputGrad + b * outFeatures;
    float acc = 0.0f;
    for (int o = 0; o < outFeatures; o++) acc += dy[o] * weight[o * inFeatures + i];
    inputGrad[index] = acc;
}

/* One item per weight (o, i), then one per bias o: sums over the batch in order.
 * weightGrad [out, in] = outputGrad^T . input, biasGrad [out] = column sums; overwritten. */
KERNEL linear_backward_weight(GLOBAL float* weightGrad, GLOBAL float* biasGrad, GLOBAL const float* outputGrad,
                              GLOBAL const float* input, int batch, int inFeatures, int outFeatures)
{
    int index = GLOBAL_ID();
    int weights = outFeatures * inFeatures;
    if (index >= weights + outFeatures) return;
    float acc = 0.0f;
    if (index < weights) {
        int i = index % inFeatures, o = index / inFeatures;
        for (int b = 0; b < batch; b++) acc += outputGrad[b * outFeatures + o] * input[b * inFeatures + i];
        weightGrad[index] = acc;
    } else {
        int o = index - weights;
        for (int b = 0; b < batch; b++) acc += outputGrad[b * outFeatures + o];
        biasGrad[o] = acc;
    }
}
