/* test_sgd.c - SGD against torch.optim.SGD (fixture optim.h5: plain, momentum, Nesterov,
 * dampening, weight decay on one parameter and not on the other), a hand-computed case,
 * resume from saved buffers, and the same bits for 1 and 2 OpenMP threads. */
#include "feed/sgd.h"
#include "feed/rng.h"
#include "feed_test.h"
#include "fixture_read.h"

#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TOL 1e-6

static void check_hand_computed(void) {
    feed_sgd opt;
    feed_sgd_init(&opt, (feed_sgd_config){.momentum = 0.9f, .weight_decay = 0.1f, .nesterov = 1});
    float p = 1.f, g = 0.5f, buf = 0.f;
    feed_sgd_add_param(&opt, &p, &g, &buf, 1, 1);
    feed_sgd_step(&opt, 0.1); /* d = 0.6, buf = 0.6, d = 0.6 + 0.9*0.6 = 1.14, p = 0.886 */
    EXPECT_NEAR_REL(p, 0.886, 1e-6);
    EXPECT_NEAR_REL(buf, 0.6, 1e-6);
    feed_sgd_step(&opt, 0.1); /* d = 0.5886, buf = 1.1286, d = 1.60434, p = 0.725566 */
    EXPECT_NEAR_REL(p, 0.725566, 1e-6);
    EXPECT_NEAR_REL(buf, 1.1286, 1e-6);
    EXPECT_INT_EQ(opt.steps_taken, 2);
    feed_sgd_free(&opt);
}

/* One case of optim.h5: two parameters (decay on / off) fed the stored gradients. */
static void check_torch_case(hid_t f, const char *name) {
    char obj[64], ds[128];
    snprintf(obj, sizeof obj, "/sgd/%s", name);
    feed_sgd_config cfg = {
        .momentum = (float)fixture_attr(f, obj, "momentum", 0),
        .dampening = (float)fixture_attr(f, obj, "dampening", 0),
        .weight_decay = (float)fixture_attr(f, obj, "weight_decay", 0),
        .nesterov = (int)fixture_attr(f, obj, "nesterov", 0),
    };
    double lr = fixture_attr(f, obj, "lr", 0);
    int steps = (int)fixture_attr(f, obj, "steps", 0);
    float *param[2], *grads[2], *after[2], *want_buf[2], *grad[2], *buf[2];
    size_t n[2];
    feed_sgd opt;
    feed_sgd_init(&opt, cfg);
    for (int k = 0; k < 2; k++) {
        snprintf(ds, sizeof ds, "%s/param%d", obj, k);
        param[k] = fixture_floats(f, ds, &n[k]);
        snprintf(ds, sizeof ds, "%s/grads%d", obj, k);
        grads[k] = fixture_floats(f, ds, NULL);
        snprintf(ds, sizeof ds, "%s/after%d", obj, k);
        after[k] = fixture_floats(f, ds, NULL);
        snprintf(ds, sizeof ds, "%s/buf%d", obj, k);
        want_buf[k] = fixture_floats(f, ds, NULL);
        snprintf(ds, sizeof ds, "%s/decay%d", obj, k);
        int decay = (int)fixture_scalar(f, ds);
        grad[k] = malloc(n[k] * sizeof(float));
        buf[k] = calloc(n[k], sizeof(float));
        feed_sgd_add_param(&opt, param[k], grad[k], buf[k], n[k], decay);
    }
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        for (int k = 0; k < 2; k++) memcpy(grad[k], grads[k] + (size_t)s * n[k], n[k] * sizeof(float));
        feed_sgd_step(&opt, lr);
        for (int k = 0; k < 2; k++) {
            double rel = feed_test_max_rel_diff(param[k], after[k] + (size_t)s * n[k], n[k]);
            if (rel > worst) worst = rel;
            EXPECT(rel <= TOL);
        }
    }
    for (int k = 0; k < 2; k++)
        if (cfg.momentum != 0.f) EXPECT(feed_test_max_rel_diff(buf[k], want_buf[k], n[k]) <= TOL);
    printf("  sgd/%-10s %d steps: max rel diff of parameters %.3g\n", name, steps, worst);
    for (int k = 0; k < 2; k++) free(param[k]), free(grads[k]), free(after[k]), free(want_buf[k]), free(grad[k]), free(buf[k]);
    feed_sgd_free(&opt);
}

/* Four Nesterov steps on n random values with `threads` OpenMP threads; if resume_at > 0 the
 * optimizer is rebuilt before that step from the saved parameters and buffers, as after
 * loading a checkpoint. p, b: (n) results. */
static void run_four_steps(float *p, float *b, float *g, size_t n, int threads, int resume_at) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    feed_sgd_config cfg = {.momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1};
    for (size_t i = 0; i < n; i++) p[i] = feed_rng_normal(7, FEED_RNG_TEST, i);
    feed_sgd opt;
    for (int s = 0; s < 4; s++) {
        if (s == 0 || s == resume_at) {
            if (s) feed_sgd_free(&opt);
            feed_sgd_init(&opt, cfg);
            feed_sgd_add_param(&opt, p, g, b, n, 1);
            feed_sgd_set_steps_taken(&opt, s);
        }
        for (size_t i = 0; i < n; i++) g[i] = feed_rng_normal(8, FEED_RNG_TEST, (uint64_t)s * n + i);
        feed_sgd_step(&opt, 0.1);
    }
    feed_sgd_free(&opt);
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* Uninterrupted on 1 thread == resumed after 2 steps on 2 threads, bit for bit. */
static void check_resume_and_threads(void) {
    const size_t n = (size_t)1 << 18;
    float *p1 = malloc(n * 4), *b1 = malloc(n * 4), *p2 = malloc(n * 4), *b2 = malloc(n * 4), *g = malloc(n * 4);
    run_four_steps(p1, b1, g, n, 1, 0);
    run_four_steps(p2, b2, g, n, 2, 2);
    EXPECT(memcmp(p1, p2, n * 4) == 0);
    EXPECT(memcmp(b1, b2, n * 4) == 0);
    /* and the run did move the parameters */
    EXPECT(p1[0] != feed_rng_normal(7, FEED_RNG_TEST, 0));
    free(p1), free(b1), free(p2), free(b2), free(g);
}

int main(void) {
    check_hand_computed();
    hid_t f = fixture_open("optim.h5");
    const char *cases[] = {"plain", "momentum", "nesterov", "dampening"};
    for (int c = 0; c < 4; c++) check_torch_case(f, cases[c]);
    fixture_close(f);
    check_resume_and_threads();
    return feed_test_finish("test_sgd");
}
