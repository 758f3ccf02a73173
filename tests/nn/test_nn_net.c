/* test_nn_net.c - net planning and API: parameter counts equal PyTorch's, state_dict names and
 * order, get/set round trips, taps, same bits when run twice (2 threads), eval forward of a
 * training net equals the inference-only (BN-folded) net. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/models.h"
#include "feed/net.h"
#include "feed/rng.h"
#include "feed_test.h"

static feed_net *model(const char *name, int classes, int batch, int hw, int inference) {
    feed_model_spec s = {0};
    if (feed_model_parse(name, &s) != 0) return NULL;
    s.num_classes = classes, s.batch = batch, s.height = s.width = hw, s.in_channels = 3;
    feed_net_options o = {.seed = 42, .inference_only = inference};
    return feed_model_build(&s, &o);
}

static void param_counts(void) {
    static const struct {
        const char *name;
        int classes, hw;
        size_t count;
    } known[] = {
        {"resnet56", 100, 32, 861620},    /* 861,620 parameters, as in PyTorch */
        {"resnet18", 1000, 32, 11689512}, /* torchvision */
        {"resnet34", 1000, 32, 21797672}, /* torchvision */
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        feed_net *net = model(known[i].name, known[i].classes, 1, known[i].hw, 1);
        EXPECT(net != NULL);
        if (!net) continue;
        printf("  %-10s %zu parameters\n", known[i].name, feed_net_num_param_scalars(net));
        EXPECT_INT_EQ(feed_net_num_param_scalars(net), known[i].count);
        feed_net_free(net);
    }
    /* unknown names are refused */
    feed_model_spec s = {0};
    EXPECT_INT_EQ(feed_model_parse("resnet57x", &s), -1);
    EXPECT_INT_EQ(feed_model_parse("vgg16", &s), -1);
}

static void names(void) {
    feed_net *net = model("resnet20-b", 10, 2, 32, 1);
    int n = feed_net_num_entries(net);
    EXPECT_STR_CONTAINS(feed_net_entry(net, 0)->name, "conv1.weight");
    EXPECT(strcmp(feed_net_entry(net, 1)->name, "bn1.weight") == 0);
    EXPECT(strcmp(feed_net_entry(net, 5)->name, "bn1.num_batches_tracked") == 0);
    EXPECT(strcmp(feed_net_entry(net, n - 1)->name, "fc.bias") == 0);
    EXPECT(feed_net_find(net, "layer2.0.shortcut.0.weight") >= 0);
    EXPECT(feed_net_find(net, "layer2.0.shortcut.1.running_var") >= 0);
    EXPECT(feed_net_find(net, "layer1.0.shortcut.0.weight") < 0);
    const feed_param_info *w = feed_net_entry(net, feed_net_find(net, "layer3.2.conv2.weight"));
    EXPECT_INT_EQ(w->ndims, 4);
    EXPECT_INT_EQ(w->shape[0], 64);
    EXPECT_INT_EQ(w->shape[1], 64);
    EXPECT_INT_EQ(w->shape[2], 3);
    const feed_param_info *fc = feed_net_entry(net, feed_net_find(net, "fc.weight"));
    EXPECT_INT_EQ(fc->ndims, 2);
    EXPECT_INT_EQ(fc->shape[0], 10);
    EXPECT_INT_EQ(fc->shape[1], 64);
    /* get/set round trip in PyTorch layout; init statistics of kaiming fan_out */
    int i = feed_net_find(net, "layer1.0.conv1.weight");
    const feed_param_info *pi = feed_net_entry(net, i);
    float *a = malloc(pi->numel * sizeof(float)), *b = malloc(pi->numel * sizeof(float));
    feed_net_get(net, i, a);
    double ss = 0;
    for (size_t k = 0; k < pi->numel; k++) ss += (double)a[k] * a[k];
    double std = sqrt(ss / pi->numel), expect = sqrt(2.0 / (16 * 9));
    EXPECT(fabs(std - expect) < 0.1 * expect);
    for (size_t k = 0; k < pi->numel; k++) a[k] = (float)k;
    feed_net_set(net, i, a);
    feed_net_get(net, i, b);
    EXPECT(memcmp(a, b, pi->numel * sizeof(float)) == 0);
    free(a), free(b);
    feed_net_free(net);
}

static float *input(size_t n, uint64_t seed) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = feed_rng_normal(seed, FEED_RNG_TEST, i);
    return x;
}

static void determinism_and_taps(void) {
    const int B = 8, K = 10;
    size_t nx = (size_t)B * 3 * 32 * 32;
    float *x = input(nx, 1);
    float *dl = input((size_t)B * K, 2);
    float *out[2], *grad[2];
    size_t np = 0;
    for (int run = 0; run < 2; run++) {
        feed_net *net = model("resnet20-b", K, B, 32, 0);
        for (int it = 0; it < 2; it++) {
            feed_net_forward(net, x, 1);
            feed_net_backward(net, dl);
        }
        out[run] = malloc((size_t)B * K * sizeof(float));
        memcpy(out[run], feed_net_output(net), (size_t)B * K * sizeof(float));
        float *g = feed_net_grads(net, &np);
        grad[run] = malloc(np * sizeof(float));
        memcpy(grad[run], g, np * sizeof(float));
        if (run == 0) {
            int d[4];
            const float *f = feed_net_tap(net, "final", d);
            EXPECT(f != NULL);
            EXPECT_INT_EQ(d[1], 64);
            EXPECT_INT_EQ(d[2], 8);
            const float *l1 = feed_net_tap(net, "layer1", d);
            EXPECT(l1 != NULL);
            EXPECT_INT_EQ(d[1], 16);
            EXPECT_INT_EQ(d[2], 32);
            EXPECT(feed_net_tap(net, "nope", NULL) == NULL);
            /* final is post-ReLU */
            double mn = 0;
            for (size_t k = 0; k < (size_t)B * 64 * 64; k++) mn = fmin(mn, f[k]);
            EXPECT(mn >= 0);
        }
        feed_net_free(net);
    }
    EXPECT(memcmp(out[0], out[1], (size_t)B * K * sizeof(float)) == 0);
    EXPECT(memcmp(grad[0], grad[1], np * sizeof(float)) == 0);
    for (int r = 0; r < 2; r++) free(out[r]), free(grad[r]);
    free(x), free(dl);
}

static void eval_matches_inference(const char *name) {
    const int B = 4, K = 10;
    size_t nx = (size_t)B * 3 * 32 * 32;
    float *x = input(nx, 3);
    feed_net *tr = model(name, K, B, 32, 0);
    /* move the BN statistics away from 0/1 */
    for (int i = 0; i < 3; i++) feed_net_forward(tr, x, 1);
    feed_net *inf = model(name, K, B, 32, 1);
    EXPECT_INT_EQ(feed_net_num_entries(tr), feed_net_num_entries(inf));
    for (int i = 0; i < feed_net_num_entries(tr); i++) {
        const feed_param_info *pi = feed_net_entry(tr, i);
        void *buf = malloc(pi->numel ? pi->numel * 8 : 8);
        feed_net_get(tr, i, buf);
        feed_net_set(inf, i, buf);
        free(buf);
    }
    feed_net_forward(tr, x, 0);
    feed_net_forward(inf, x, 0);
    double e = feed_test_max_rel_diff(feed_net_output(inf), feed_net_output(tr), (size_t)B * K);
    printf("  %s eval vs inference-only rel diff %.3g\n", name, e);
    EXPECT(e < 1e-4);
    int d[4];
    float *f1 = malloc((size_t)B * 64 * 64 * 16 * sizeof(float));
    const float *t = feed_net_tap(tr, "final", d);
    size_t n = (size_t)d[0] * d[1] * d[2] * d[3];
    memcpy(f1, t, n * sizeof(float));
    e = feed_test_max_rel_diff(feed_net_tap(inf, "final", NULL), f1, n);
    EXPECT(e < 1e-4);
    free(f1);
    feed_net_free(tr);
    feed_net_free(inf);
    free(x);
}

int main(void) {
    param_counts();
    names();
    determinism_and_taps();
    eval_matches_inference("resnet20-b");
    eval_matches_inference("resnet20-a");
    eval_matches_inference("wrn-10-2");
    return feed_test_finish("test_nn_net");
}
