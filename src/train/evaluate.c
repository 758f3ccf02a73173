/* evaluate.c - test-set loss and error of a network, optionally keeping the softmax outputs
 * for ensembles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/loss_ce.h"
#include "feed/train.h"

/* Softmax of one row, in double for the same result at any thread count. */
static void softmax_row(const float *logits, int k, float *out) {
    double m = logits[0], s = 0;
    for (int j = 1; j < k; j++) m = logits[j] > m ? logits[j] : m;
    for (int j = 0; j < k; j++) s += exp((double)logits[j] - m);
    for (int j = 0; j < k; j++) out[j] = (float)(exp((double)logits[j] - m) / s);
}

feed_eval_result feed_evaluate(feed_net *net, feed_loader *ld, int classes, float *probs) {
    int dims[4];
    feed_loader_batch_shape(ld, dims);
    int B = dims[0];
    FEED_CHECK(feed_net_batch(net) == B, "this is a bug", "evaluation net planned for batch %d, loader gives %d",
               feed_net_batch(net), B);
    size_t img = (size_t)dims[1] * dims[2] * dims[3];
    float *x = feed_xaligned(sizeof(float) * B * img, "eval batch");
    int32_t *y = feed_xmalloc(sizeof(int32_t) * B, "eval labels");
    feed_eval_result r = {0};
    double loss_sum = 0;
    int64_t steps = feed_loader_steps_per_epoch(ld);
    for (int64_t s = 0; s < steps; s++) {
        int n = feed_loader_batch(ld, 0, s, x, y);
        if (n < B) memset(x + (size_t)n * img, 0, sizeof(float) * (B - n) * img); /* padding rows */
        feed_net_forward(net, x, 0);
        const float *logits = feed_net_output(net);
        loss_sum += feed_ce_forward_backward(logits, y, n, classes, 0.0f, NULL) * n;
        r.errors += feed_count_errors(logits, y, n, classes);
        if (probs)
            for (int i = 0; i < n; i++)
                softmax_row(logits + (size_t)i * classes, classes, probs + (size_t)(r.samples + i) * classes);
        r.samples += n;
    }
    free(x);
    free(y);
    r.loss = r.samples ? loss_sum / r.samples : NAN;
    r.error = r.samples ? (double)r.errors / r.samples : NAN;
    return r;
}
