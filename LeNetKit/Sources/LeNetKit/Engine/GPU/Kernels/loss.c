#include "dialect.h"

/* Softmax cross-entropy over logits [batch, classes], as nn.CrossEntropyLoss() (mean). */

/* One item per row b: rowLoss [batch] = -log softmax(row)[label], rowCorrect [batch] = 1 when
 * the first largest logit is the label's, and with `writeGradient` logitsGrad [batch, classes]
 * = (softmax - onehot) * scale, scale = 1/batch from the host. */
KERNEL softmax_cross_entropy(GLOBAL float* logitsGrad, GLOBAL float* rowLoss, GLOBAL int* rowCorrect,
                             GLOBAL const float* logits, GLOBAL const int* labels,
                             int batch, int classes, float scale, int writeGradient)
{
    int b = GLOBAL_ID();
    if (b >= batch) return;
    GLOBAL const float* row = logits + b * classes;
    int best = 0;
    for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    float largest = row[best], expSum = 0.0f;
    for (int c = 0; c < classes; c++) expSum += exp(row[c] - largest);
    int label = labels[b];
    rowLoss[b] = log(expSum) - (row[label] - largest);
    rowCorrect[b] = best == label ? 1 : 0;
    if (writeGradient) {
        for (int c = 0; c < classes; c++) {
            float probability = exp(row[c] - largest) / expSum;
            logitsGrad[b * classes + c] = (probability - (c == label ? 1.0f : 0.0f)) * scale;
        }
    }
}

/* One item: adds the batch's mean loss and correct count to the running totals, in row
 * order. lossTotals [2] is a compensated (Kahan) sum and its carry, so that a float keeps
 * an epoch of batch losses as exactly as the CPU's Double; correctTotal [1]. */
KERNEL add_batch_totals(GLOBAL float* lossTotals, GLOBAL int* correctTotal, GLOBAL const float* rowLoss,
                        GLOBAL const int* rowCorrect, int batch)
{
    if (GLOBAL_ID() != 0) return;
    float loss = 0.0f;
    int correct = 0;
    for (int b = 0; b < batch; b++) { loss += rowLoss[b]; correct += rowCorrect[b]; }
    float term = loss / (float)batch - lossTotals[1];
    float sum = lossTotals[0] + term;
    lossTotals[1] = (sum - lossTotals[0]) - term;
    lossTotals[0] = sum;
    correctTotal[0] += correct;
}
