/* test_ce_gradcheck.c - cross-entropy value and gradient against a double-precision
 * reference and its central finite differences, with and without label smoothing; top-k. */
#include "feed/loss_ce.h"
#include "feed/rng.h"
#include "feed_test.h"

#include <stdint.h>
#include <stdio.h>

enum { B = 5, K = 7 };

/* Straightforward reference: -sum_k q_k log p_k averaged over the batch, q the smoothed target. */
static double ce_reference(const double *logits, const int32_t *labels, double eps) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        const double *row = logits + b * K;
        double z = 0;
        for (int k = 0; k < K; k++) z += exp(row[k]);
        for (int k = 0; k < K; k++) {
            double q = eps / K + (k == labels[b] ? 1 - eps : 0);
            total -= q * log(exp(row[k]) / z);
        }
    }
    return total / B;
}

static void check_smoothing(float eps) {
    float logits[B * K], dlogits[B * K], fd[B * K];
    double ld[B * K];
    int32_t labels[B];
    for (int i = 0; i < B * K; i++) {
        logits[i] = 4.f * (feed_rng_uniform(3, FEED_RNG_TEST, (uint64_t)i) - 0.5f);
        ld[i] = logits[i];
    }
    for (int b = 0; b < B; b++) labels[b] = (int32_t)((b * 3) % K);

    double loss = feed_ce_forward_backward(logits, labels, B, K, eps, dlogits);
    EXPECT_NEAR_REL(loss, ce_reference(ld, labels, eps), 1e-12);

    const double h = 1e-5;
    for (int i = 0; i < B * K; i++) {
        double keep = ld[i];
        ld[i] = keep + h;
        double up = ce_reference(ld, labels, eps);
        ld[i] = keep - h;
        double down = ce_reference(ld, labels, eps);
        ld[i] = keep;
        fd[i] = (float)((up - down) / (2 * h));
    }
    double rel = feed_test_max_rel_diff(dlogits, fd, B * K);
    EXPECT(rel < 1e-6);
    if (rel >= 1e-6) fprintf(stderr, "  smoothing %g: gradient max rel diff %.3g\n", (double)eps, rel);

    /* each row of the gradient sums to 0 (softmax minus a distribution) */
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += dlogits[b * K + k];
        EXPECT(fabs(s) < 1e-7);
    }
    /* the loss alone (no gradient buffer) gives the same value */
    EXPECT(feed_ce_forward_backward(logits, labels, B, K, eps, NULL) == loss);
}

static void check_large_logits(void) {
    /* log-sum-exp must not overflow: logits of 1000 */
    float logits[2 * 3] = {1000.f, 0.f, -1000.f, 0.f, 1000.f, 1000.f};
    int32_t labels[2] = {0, 2};
    float d[6];
    double loss = feed_ce_forward_backward(logits, labels, 2, 3, 0.f, d);
    EXPECT_NEAR_REL(loss, 0.5 * log(2.0), 1e-12); /* sample 0: 0, sample 1: log 2 */
    EXPECT_NEAR_REL(d[4], 0.25, 1e-7);
    EXPECT_NEAR_REL(d[5], -0.25, 1e-7);
}

static void check_topk(void) {
    /* sample 0: label 1 is the max; sample 1: label 0 ties with class 2 (lower index wins);
     * sample 2: label 2 ties with class 0 (loses the tie), ranks 2nd; sample 3: label ranks 3rd */
    float logits[4 * 4] = {0, 5, 1, 2, 3, 1, 3, 0, 4, 1, 4, 0, 9, 8, 7, 0};
    int32_t labels[4] = {1, 0, 2, 2};
    EXPECT_INT_EQ(feed_count_topk_correct(logits, labels, 4, 4, 1), 2);
    EXPECT_INT_EQ(feed_count_errors(logits, labels, 4, 4), 2);
    EXPECT_INT_EQ(feed_count_topk_correct(logits, labels, 4, 4, 2), 3);
    EXPECT_INT_EQ(feed_count_topk_correct(logits, labels, 4, 4, 3), 4);
}

int main(void) {
    check_smoothing(0.f);
    check_smoothing(0.1f);
    check_smoothing(1.f);
    check_large_logits();
    check_topk();
    return feed_test_finish("test_ce_gradcheck");
}
