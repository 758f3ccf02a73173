/* loss_ce.h - softmax cross-entropy with PyTorch semantics, and accuracy counting.
 *
 * Matches torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps,
 * reduction='mean') for class-index labels (no ignore_index, no class weights):
 *
 *   p_b   = softmax(logits_b)                                 logits is (B, K), row-major
 *   loss  = 1/B * sum_b [ -(1-eps) * log p_{b,y_b}  -  eps/K * sum_k log p_{b,k} ]
 *   dloss/dlogits_{b,k} = ( p_{b,k} - (1-eps)*[k == y_b] - eps/K ) / B
 *
 * Every sample is computed in double (log-sum-exp with the row maximum subtracted), so the
 * result does not depend on the thread count. Labels outside [0, K) end the job (FEED_FAIL).
 */
#ifndef FEED_LOSS_CE_H
#define FEED_LOSS_CE_H

#include <stdint.h>

/* Returns the mean loss. dlogits (B, K) receives d loss / d logits when not NULL (it is
 * overwritten, not accumulated); it may not alias logits. 0 <= label_smoothing <= 1. */
double feed_ce_forward_backward(const float *logits, const int32_t *labels, int batch, int classes,
                                float label_smoothing, float *dlogits);

/* Number of samples whose label is among the top-k logits (k = 1: argmax accuracy).
 * Ties are broken like torch.argmax / topk on CPU: the lower class index ranks first. */
int feed_count_topk_correct(const float *logits, const int32_t *labels, int batch, int classes, int k);

/* Number of samples with argmax(logits_b) != y_b (the error count of top-1). */
int feed_count_errors(const float *logits, const int32_t *labels, int batch, int classes);

#endif
