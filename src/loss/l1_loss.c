/* l1_loss.c - mean absolute error; see loss_l1.h. */
#include "feed/loss_l1.h"

#include <math.h>

#include "feed/check.h"

#define BLOCK 4096   /* elements per partial sum */
#define BLOCKS 64    /* partial sums held on the stack per round */

double feed_loss_l1_mean(const float *y, const float *t, size_t n, float *dy) {
    FEED_CHECK(n > 0, "internal: empty input to the L1 loss", "n = %zu", n);
    float g = (float)(1.0 / (double)n);
    double total = 0;
    for (size_t r0 = 0; r0 < n; r0 += (size_t)BLOCK * BLOCKS) {
        double partial[BLOCKS];
        size_t left = n - r0;
        int blocks = (int)((left + BLOCK - 1) / BLOCK < BLOCKS ? (left + BLOCK - 1) / BLOCK : BLOCKS);
#pragma omp parallel for schedule(static) if (left >= 65536)
        for (int j = 0; j < blocks; j++) {
            size_t i0 = r0 + (size_t)j * BLOCK, i1 = i0 + BLOCK < n ? i0 + BLOCK : n;
            double s = 0;
            for (size_t i = i0; i < i1; i++) {
                float d = y[i] - t[i];
                s += fabsf(d);
                if (dy) dy[i] = d > 0.f ? g : (d < 0.f ? -g : 0.f);
            }
            partial[j] = s;
        }
        for (int j = 0; j < blocks; j++) total += partial[j];
    }
    return total / (double)n;
}
