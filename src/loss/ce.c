/* ce.c - softmax cross-entropy (PyTorch semantics) and top-k counting; see loss_ce.h. */
#include "feed/loss_ce.h"

#include "feed/check.h"

#include <math.h>

static void check_label(int32_t label, int classes, int b) {
    FEED_CHECK(label >= 0 && label < classes, "labels must lie in [0, num_classes); check the data set's class count",
               "label %d of sample %d is outside [0, %d)", (int)label, b, classes);
}

/* Loss of one sample (logits row of K) and, if drow, its gradient scaled by inv_batch. */
static double ce_sample(const float *row, int32_t label, int classes, double smoothing, double inv_batch,
                        float *drow) {
    double max = row[0];
    for (int k = 1; k < classes; k++)
        if (row[k] > max) max = row[k];
    double sum_exp = 0, sum_logits = 0;
    for (int k = 0; k < classes; k++) {
        sum_exp += exp((double)row[k] - max);
        sum_logits += row[k];
    }
    double log_z = max + log(sum_exp); /* log sum_k exp(row_k) */
    double nll = log_z - row[label];   /* -log p_y */
    double mean_neg_logp = log_z - sum_logits / classes; /* -1/K sum_k log p_k */
    if (drow) {
        double off_target = smoothing / classes;
        for (int k = 0; k < classes; k++) {
            double p = exp((double)row[k] - log_z);
            double target = off_target + (k == label ? 1.0 - smoothing : 0.0);
            drow[k] = (float)((p - target) * inv_batch);
        }
    }
    return (1.0 - smoothing) * nll + smoothing * mean_neg_logp;
}

double feed_ce_forward_backward(const float *logits, const int32_t *labels, int batch, int classes,
                                float label_smoothing, float *dlogits) {
    FEED_CHECK(batch > 0 && classes > 0, "internal: empty cross-entropy input", "batch %d, classes %d", batch, classes);
    FEED_CHECK(label_smoothing >= 0.f && label_smoothing <= 1.f, "label_smoothing must be in [0, 1]",
               "label_smoothing = %g", (double)label_smoothing);
    double total = 0, inv_batch = 1.0 / batch;
    for (int b = 0; b < batch; b++) {
        check_label(labels[b], classes, b);
        const float *row = logits + (size_t)b * classes;
        total += ce_sample(row, labels[b], classes, label_smoothing, inv_batch,
                           dlogits ? dlogits + (size_t)b * classes : NULL);
    }
    return total * inv_batch;
}

/* Rank of the label's logit: classes scoring higher, plus equal-scoring classes with a lower
 * index (torch's tie order). The label is within the top k iff rank < k. NaN ranks last. */
static int label_rank(const float *row, int32_t label, int classes) {
    float target = row[label];
    if (isnan(target)) return classes;
    int rank = 0;
    for (int k = 0; k < classes; k++)
        if (row[k] > target || (row[k] == target && k < label) || isnan(row[k])) rank++;
    return rank;
}

int feed_count_topk_correct(const float *logits, const int32_t *labels, int batch, int classes, int k) {
    int correct = 0;
    for (int b = 0; b < batch; b++) {
        check_label(labels[b], classes, b);
        if (label_rank(logits + (size_t)b * classes, labels[b], classes) < k) correct++;
    }
    return correct;
}

int feed_count_errors(const float *logits, const int32_t *labels, int batch, int classes) {
    return batch - feed_count_topk_correct(logits, labels, batch, classes, 1);
}
