#include "dialect.h"

/* BatchNorm2d over NCHW: statistics per channel over batch x H x W (`pixels` = H*W).
 * The training kernels run one group of REDUCE_ITEMS items per channel: each item sums
 * a strided share of the channel's values and the group adds the shares in a fixed tree. */

/* Training forward: the batch's mean and biased variance (two passes, as the CPU), then
 * normalized [N,C,H,W] = (x - mean) * invStd (kept for backward), output = gamma * normalized
 * + beta, inverseStd [C], and the running statistics moved toward the batch's (unbiased
 * variance), as PyTorch does. */
KERNEL batchnorm_training_forward(GLOBAL float* output, GLOBAL float* normalized, GLOBAL float* inverseStd,
                                  GLOBAL const float* input, GLOBAL const float* gamma, GLOBAL const float* beta,
                                  GLOBAL float* runningMean, GLOBAL float* runningVar,
                                  float momentum, float epsilon, int batch, int channels, int pixels)
{
    LOCAL float scratch[REDUCE_ITEMS];
    int c = GROUP_ID();
    if (c >= channels) return;
    int n = batch * pixels;
    float share = 0.0f, total, squares;
    for (int j = LOCAL_ID(); j < n; j += REDUCE_ITEMS) share += input[((j / pixels) * channels + c) * pixels + j % pixels];
    GROUP_SUM(total, share, scratch);
    float mean = total / (float)n;
    share = 0.0f;
    for (int j = LOCAL_ID(); j < n; j += REDUCE_ITEMS) {
        float d = input[((j / pixels) * channels + c) * pixels + j % pixels] - mean;
        share += d * d;
    }
    GROUP_SUM(squares, share, scratch);
    float variance = squares / (float)n;
    float invStd = 1.0f / sqrt(variance + epsilon);
    for (int j = LOCAL_ID(); j < n; j += REDUCE_ITEMS) {
        int at = ((j / pixels) * channels + c) * pixels + j % pixels;
        float xhat = input[at] * invStd + (-mean * invStd);
        normalized[at] = xhat;
        output[at] = xhat * gamma[c] + beta[c];
    }
    if (LOCAL_ID() == 0) {
        float unbiased = n > 1 ? squares / (float)(n - 1) : variance;
        inverseStd[c] = invStd;
        runningMean[c] = (1.0f - momentum) * runningMean[c] + momentum * mean;
        runningVar[c] = (1.0f - momentum) * runningVar[c] + momentum * unbiased;
    }
}

/* The forward in evaluation mode, one item per value: normalised with the running statistics. */
KERNEL batchnorm_inference_forward(GLOBAL float* output, GLOBAL const float* input, GLOBAL const float* gamma,
                                   GLOBAL const float* beta, GLOBAL const float* runningMean,
                                   GLOBAL const float* runningVar, float epsilon, int batch, int channels, int pixels)
{
    int index = GLOBAL_ID();
    if (index >= batch * channels * pixels) return;
    int c = (index / pixels) % channels;
    float scale = gamma[c] / sqrt(runningVar[c] + epsilon);
    float shift = beta[c] - runningMean[c] * scale;
    output[index] = input[index] * scale + shift;
}

/* Backward of the training forward, one group per channel: gammaGrad [C] = sum(dy * xhat),
 * betaGrad [C] = sum(dy), and inputGrad [N,C,H,W]: dx = k*N*dy - k*xhat*sum(dy*xhat) - k*sum(dy)
 * with k = gamma * invStd / N. */
KERNEL batchnorm_backward(GLOBAL float* inputGrad, GLOBAL float* gammaGrad, GLOBAL float* betaGrad,
                          GLOBAL const float* outputGrad, GLOBAL const float* normalized,
                          GLOBAL const float* inverseStd, GLOBAL const float* gamma, int batch, int channels, int pixels)
{
    LOCAL float scratch[REDUCE_ITEMS];
    int c = GROUP_ID();
    if (c >= channels) return;
    int n = batch * pixels;
    float shareDy = 0.0f, shareDyXhat = 0.0f, sumDy, sumDyXhat;
    for (int j = LOCAL_ID(); j < n; j += REDUCE_ITEMS) {
        int at = ((j / pixels) * channels + c) * pixels + j % pixels;
        shareDy += outputGrad[at];
        shareDyXhat += outputGrad[at] * normalized[at];
    }
    GROUP_SUM(sumDy, shareDy, scratch);
    GROUP_SUM(sumDyXhat, shareDyXhat, scratch);
    float k = gamma[c] * inverseStd[c] / (float)n;
    float a = k * (float)n, b = -k * sumDyXhat, shift = -k * sumDy;
    for (int j = LOCAL_ID(); j < n; j += REDUCE_ITEMS) {
        int at = ((j / pixels) * channels + c) * pixels + j % pixels;
        inputGrad[at] = outputGrad[at] * a + normalized[at] * b + shift;
    }
    if (LOCAL_ID() == 0) {
        gammaGrad[c] = sumDyXhat;
        betaGrad[c] = sumDy;
    }
}
