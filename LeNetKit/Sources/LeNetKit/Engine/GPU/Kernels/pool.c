#include "dialect.h"

/* Max pooling with a square window equal to its stride (2x2 in LeNet) over `planes`
 * (batch x channels) planes [H, W], each pooled to [H/size, W/size]. */

/* One item per output: the window's first maximum in row-major order (as PyTorch) and
 * which input won, dy*size+dx, kept in `choice` for the backward. With `rectify` the
 * output is max(., 0), a ReLU before the pool done in the same pass (they commute), and
 * a window whose maximum is not positive records size*size: no input gets its gradient. */
KERNEL maxpool_forward(GLOBAL float* output, GLOBAL u8* choice, GLOBAL const float* input,
                       int planes, int height, int width, int size, int rectify)
{
    int index = GLOBAL_ID();
    int outHeight = height / size, outWidth = width / size;
    if (index >= planes * outHeight * outWidth) return;
    int ox = index % outWidth, oy = (index / outWidth) % outHeight, plane = index / (outWidth * outHeight);
    GLOBAL const float* top = input + (plane * height + oy * size) * width + ox * size;
    float best = top[0];
    int pick = 0;
    for (int dy = 0; dy < size; dy++) {
        for (int dx = 0; dx < size; dx++) {
            float v = top[dy * width + dx];
            if (v > best) { best = v; pick = dy * size + dx; }  /* strictly: the first maximum wins ties */
        }
    }
    if (rectify && !(best > 0.0f)) { best = 0.0f; pick = size * size; }
    output[index] = best;
    choice[index] = (u8)pick;
}

/* One item per input: its window's output gradient if it won the window, else 0.
 * inputGrad [planes, H, W] is overwritten (inputs outside every window get 0). */
KERNEL maxpool_backward(GLOBAL float* inputGrad, GLOBAL const float* outputGrad, GLOBAL const u8* choice,
                        int planes, int height, int width, int size)
{
    int index = GLOBAL_ID();
    if (index >= planes * height * width) return;
    int outHeight = height / size, outWidth = width / size;
    int x = index % width, y = (index / width) % height, plane = index / (width * height);
    int oy = y / size, ox = x / size;
    float grad = 0.0f;
    if (oy < outHeight && ox < outWidth) {
        int window = (plane * outHeight + oy) * outWidth + ox;
        if (choice[window] == (y % size) * size + x % size) grad = outputGrad[window];
    }
    inputGrad[index] = grad;
}
