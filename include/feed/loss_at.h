/* loss_at.h - attention transfer (Zagoruyko & Komodakis 2017; docs/methods.md, "AT").
 *
 * For a residual stage's output A (B, C, H, W) seen as (B, C, D) with D = H*W:
 *   a_b = mean_c A_{b,c}^2                      (D)   channel mean of squares
 *   Q_b = a_b / max(||a_b||_2, 1e-12)           (D)   per-sample L2 normalisation
 *   L_t = 1/(B*D) * sum_{b,i} (Q^S_{b,i} - Q^T_{t,b,i})^2    (mean over B x D, as the reference
 *                                                        code's at_loss), teacher t
 * A job adds beta/2 * L_t per stage and teacher; `scale` below is that factor.
 *   g_t    = scale * 2 (Q^S - Q^T_t) / (B*D)                  dL_t/dQ^S
 *   da_b   = sum_t (g_tb - Q_b <Q_b, g_tb>) / ||a_b||         (g_tb / 1e-12 when clamped)
 *   dA_bci = da_bi * 2 A_bci / C
 * The student's map is computed once for all teachers, and dA in one pass. Each sample is
 * reduced serially in double; samples run in parallel and sums are taken in sample order, so
 * results do not depend on the thread count. No allocation.
 */
#ifndef FEED_LOSS_AT_H
#define FEED_LOSS_AT_H

#include <stddef.h>

/* q (B, D) = normalised attention map of x (B, C, D). */
void feed_attention_map(const float *x, int batch, int channels, size_t dim, float *q);

/* L_t (without scale) of the student's stage output x (B, C, D) against each of n teachers'
 * normalised maps qt[t] (B, D), into loss[t]. If dx is not NULL, scale * d(sum_t L_t)/dx is
 * added to it (B, C, D). Scratch: q holds B*D floats, sample_loss B*n doubles. */
void feed_at_loss(const float *x, const float *const *qt, int n, int batch, int channels, size_t dim, float scale,
                  float *q, double *sample_loss, double *loss, float *dx);

#endif
