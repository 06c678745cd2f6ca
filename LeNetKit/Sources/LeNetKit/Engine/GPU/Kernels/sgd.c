#include "dialect.h"

/* One SGD update of the whole parameter block, as torch.optim.SGD and the CPU's sgdUpdate:
 * g <- g + decay * w; v <- momentum * v + g (v = g on the first step); w <- w - lr * v.
 * Without momentum the velocity is neither read nor written. values, velocity, gradients [count]. */
KERNEL sgd_update(GLOBAL float* values, GLOBAL float* velocity, GLOBAL const float* gradients, int count,
                  float learningRate, float momentum, float weightDecay, int firstStep)
{
    int i = GLOBAL_ID();
    if (i >= count) return;
    if (momentum == 0.0f) {
        values[i] -= learningRate * (gradients[i] + weightDecay * values[i]);
    } else {
        float grad = gradients[i] + weightDecay * values[i];
        float v = firstStep ? grad : momentum * velocity[i] + grad;
        velocity[i] = v;
        values[i] -= learningRate * v;
    }
}
