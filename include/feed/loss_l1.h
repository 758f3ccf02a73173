/* loss_l1.h - plain L1 loss, PyTorch's L1Loss with mean reduction: the reconstruction loss of
 * FT's paraphraser (docs/methods.md, "FT").
 *   L = 1/n * sum_i |y_i - t_i|,   dL/dy_i = sign(y_i - t_i) / n   (sign(0) = 0)
 * Sums run in double over fixed-size blocks added in order: the bits do not depend on the
 * thread count. No allocation. */
#ifndef FEED_LOSS_L1_H
#define FEED_LOSS_L1_H

#include <stddef.h>

/* Returns L; dy (n floats, may be NULL) receives dL/dy (overwritten). */
double feed_loss_l1_mean(const float *y, const float *t, size_t n, float *dy);

#endif
