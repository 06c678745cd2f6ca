#include "dialect.h"

/* A batch from the split kept on the device as bytes: pixels [count, pixelsPerImage] and
 * labels [count] as 0-255 bytes, order [count] the epoch's permutation. One item per
 * pixel of the batch: images [batch, pixelsPerImage] = byte / 255 (a division, as
 * torchvision's ToTensor and the CPU), and labels [batch] as ints. */
KERNEL gather_batch(GLOBAL float* images, GLOBAL int* labels, GLOBAL const u8* pixelBytes,
                    GLOBAL const u8* labelBytes, GLOBAL const int* order, int start, int batch, int pixelsPerImage)
{
    int index = GLOBAL_ID();
    if (index >= batch * pixelsPerImage) return;
    int slot = index / pixelsPerImage, p = index % pixelsPerImage;
    int source = order[start + slot];
    images[index] = (float)pixelBytes[source * pixelsPerImage + p] / 255.0f;
    if (p == 0) labels[slot] = (int)labelBytes[source];
}
