/* loss_at.h - attention transfer (Zagoruyko & Komodakis 2017; docs/methods.md, "AT").
 *
 * For a residual stage's output A (B, C, H, W) seen as (B, C, D) with D = H*W:
 *   a_b = mean_c A_{b,c}^2                      (D)   channel mean of squares
 *   Q_b = a_b / max(||a_b||_2, 1e-12)           (D)   per-sample L2 normalisation
 *   L   = 1/(B*D) * sum_{b,i} (Q^S_{b,i} - Q^T_{b,i})^2     (mean over B x D, as the reference
 *                                                         code's at_loss)
 * A job adds beta/2 * L per stage and teacher; `scale` below is that factor.
 *   g      = scale * 2 (Q^S - Q^T) / (B*D)              dL/dQ^S
 *   da_b   = (g_b - Q_b <Q_b, g_b>) / ||a_b||           (g_b / 1e-12 when the norm is clamped)
 *   dA_bci = da_bi * 2 A_bci / C
 * Each sample is reduced serially in double; samples run in parallel and partial sums are
 * added in sample order, so results do not depend on the thread count. No allocation.
 */
#ifndef FEED_LOSS_AT_H
#define FEED_LOSS_AT_H

#include <stddef.h>

/* q (B, D) = normalised attention map of x (B, C, D). */
void feed_attention_map(const float *x, int batch, int channels, size_t dim, float *q);

/* L (without scale) of the student's stage output x (B, C, D) against the teacher's
 * normalised map qt (B, D). If dx is not NULL, scale * dL/dx is added to it (B, C, D).
 * q_scratch holds B*D floats. */
double feed_at_loss(const float *x, const float *qt, int batch, int channels, size_t dim, float scale,
                    float *q_scratch, float *dx);

#endif
