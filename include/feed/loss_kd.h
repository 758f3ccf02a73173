/* loss_kd.h - Hinton's knowledge distillation (docs/methods.md, "KD").
 *
 * With N teachers' logits t_n (B, K), the student's logits s (B, K) and temperature T:
 *   p_b = 1/N sum_n softmax(t_{n,b} / T)                     the teachers' soft targets
 *   q_b = softmax(s_b / T)
 *   L   = T^2 / B * sum_b KL(p_b || q_b) = T^2 / B * sum_{b,k} p_bk (log p_bk - log q_bk)
 *   dL/ds_bk = T / B * (q_bk - p_bk)
 * (RepDistiller's DistillKL: kl_div(log_softmax(s/T), p, 'sum') * T^2 / B; p log p = 0 for
 * p = 0.) Every sample is computed in double; no allocation.
 */
#ifndef FEED_LOSS_KD_H
#define FEED_LOSS_KD_H

/* p (B, K) = mean over the n teachers of softmax(logits[t] / T). */
void feed_kd_soft_targets(const float *const *logits, int n, int batch, int classes, double T, float *p);

/* L (without scale) of student logits s against soft targets p; if ds is not NULL,
 * scale * dL/ds is added to it (B, K). */
double feed_kd_loss(const float *s, const float *p, int batch, int classes, double T, float scale, float *ds);

#endif
