/* loss_feed.h - FEED's normalised L1 loss between two feature maps (docs/methods.md, "FEED").
 *
 * Inputs are plain NCHW float arrays viewed as B rows of D = C*H*W elements:
 *   v  (B, D)  the student side: NTL_n(x^S) for pFEED, x^S itself for the L1 baseline
 *   t  (B, D)  the teacher's final map x^T_n (constant: no gradient)
 *
 *   u_b = v_b / max(||v_b||_2, 1e-12),   w_b = t_b / max(||t_b||_2, 1e-12)
 *   L   = 1/(B*D) * sum_{b,i} |u_{b,i} - w_{b,i}|                    (PyTorch L1Loss mean)
 *   g   = scale * sign(u - w) / (B*D),   sign(0) = 0
 *   dL/dv_b = (g_b - u_b * <u_b, g_b>) / ||v_b||_2    if ||v_b|| >= 1e-12
 *   dL/dv_b = g_b / 1e-12                              otherwise (F.normalize's backward:
 *                                                      the clamped norm is a constant)
 *
 * `scale` is the factor the loss enters the total with: beta (beta_reduce = sum) or beta/N.
 * The NTL itself is a conv stack of the engine; only its output is seen here.
 * Each sample is reduced serially in double; samples run in parallel (OpenMP) and the batch
 * sum is taken in sample order, so the bits do not depend on the thread count.
 * No memory is allocated.
 */
#ifndef FEED_LOSS_FEED_H
#define FEED_LOSS_FEED_H

#include <stddef.h>

#define FEED_LOSS_NORM_EPS 1e-12

/* Returns L (without scale). If dv is not NULL it receives scale * dL/dv, overwriting dv
 * (accumulate = 0) or adding to it (accumulate = 1, e.g. several L1-baseline teachers on
 * the same x^S). dv may not alias v or t. */
double feed_loss_normalised_l1(const float *v, const float *t, int batch, size_t dim, float scale,
                               float *dv, int accumulate);

#endif
