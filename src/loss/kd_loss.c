/* kd_loss.c - soft targets and the KD loss; see loss_kd.h. */
#include "feed/loss_kd.h"

#include <math.h>

#include "feed/check.h"

/* log of the normaliser of softmax(row / T), in double. */
static double log_partition(const float *row, int classes, double T) {
    double max = row[0] / T;
    for (int k = 1; k < classes; k++)
        if (row[k] / T > max) max = row[k] / T;
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += exp(row[k] / T - max);
    return max + log(sum);
}

void feed_kd_soft_targets(const float *const *logits, int n, int batch, int classes, double T, float *p) {
    FEED_CHECK(n > 0 && batch > 0 && classes > 0 && T > 0, "internal: empty KD input",
               "teachers %d, batch %d, classes %d, T %g", n, batch, classes, T);
    for (int b = 0; b < batch; b++) {
        float *pb = p + (size_t)b * classes;
        for (int k = 0; k < classes; k++) pb[k] = 0;
        for (int t = 0; t < n; t++) { /* summed in teacher order, as a mean over a stacked dim */
            const float *row = logits[t] + (size_t)b * classes;
            double z = log_partition(row, classes, T);
            for (int k = 0; k < classes; k++) pb[k] += (float)exp(row[k] / T - z);
        }
        for (int k = 0; k < classes; k++) pb[k] /= (float)n;
    }
}

double feed_kd_loss(const float *s, const float *p, int batch, int classes, double T, float scale, float *ds) {
    FEED_CHECK(batch > 0 && classes > 0 && T > 0, "internal: empty KD input", "batch %d, classes %d, T %g",
               batch, classes, T);
    double total = 0, grad_mag = scale * T / batch;
    for (int b = 0; b < batch; b++) {
        const float *row = s + (size_t)b * classes, *pb = p + (size_t)b * classes;
        double z = log_partition(row, classes, T), kl = 0;
        for (int k = 0; k < classes; k++) {
            double log_q = row[k] / T - z;
            if (pb[k] > 0) kl += pb[k] * (log((double)pb[k]) - log_q);
            if (ds) ds[(size_t)b * classes + k] += (float)(grad_mag * (exp(log_q) - pb[k]));
        }
        total += kl;
    }
    return total * T * T / batch;
}
