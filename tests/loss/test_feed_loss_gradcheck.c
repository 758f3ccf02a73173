/* test_feed_loss_gradcheck.c - FEED normalised-L1 loss against a double-precision reference
 * and its central finite differences; sign(0) = 0; the clamped-norm branch; accumulate;
 * the same bits for 1 and 2 OpenMP threads. */
#include "feed/loss_feed.h"
#include "feed/rng.h"
#include "feed_test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* L = mean over B*D of |v/||v|| - t/||t|||, in double. v, t are (B, D). */
static double feed_reference(const double *v, const double *t, int batch, int dim) {
    double total = 0;
    for (int b = 0; b < batch; b++) {
        const double *vb = v + (size_t)b * dim, *tb = t + (size_t)b * dim;
        double nv = 0, nt = 0;
        for (int i = 0; i < dim; i++) nv += vb[i] * vb[i], nt += tb[i] * tb[i];
        nv = sqrt(nv), nt = sqrt(nt);
        for (int i = 0; i < dim; i++) total += fabs(vb[i] / nv - tb[i] / nt);
    }
    return total / ((double)batch * dim);
}

static void fill(float *x, size_t n, uint64_t seed, float offset) {
    for (size_t i = 0; i < n; i++) x[i] = (float)feed_rng_normal(seed, FEED_RNG_TEST, i) + offset;
}

static void check_against_finite_differences(void) {
    enum { B = 3, D = 2 * 4 * 5 }; /* B x (C=2, H=4, W=5) */
    const float scale = 500.f;
    float v[B * D], t[B * D], dv[B * D], fd[B * D];
    double vd[B * D], td[B * D];
    fill(v, B * D, 11, 0.3f);
    fill(t, B * D, 12, 0.f);
    for (int i = 0; i < B * D; i++) vd[i] = v[i], td[i] = t[i];

    double loss = feed_loss_normalised_l1(v, t, B, D, scale, dv, 0);
    EXPECT_NEAR_REL(loss, feed_reference(vd, td, B, D), 1e-6);

    const double h = 1e-6;
    for (int i = 0; i < B * D; i++) {
        double keep = vd[i];
        vd[i] = keep + h;
        double up = feed_reference(vd, td, B, D);
        vd[i] = keep - h;
        double down = feed_reference(vd, td, B, D);
        vd[i] = keep;
        fd[i] = (float)(scale * (up - down) / (2 * h));
    }
    double rel = feed_test_max_rel_diff(dv, fd, B * D);
    EXPECT(rel < 1e-4);
    printf("FEED loss gradient vs finite differences: max rel diff %.3g\n", rel);

    /* the gradient is orthogonal to v per sample (the loss is scale-invariant in v) */
    for (int b = 0; b < B; b++) {
        double dot = 0, nv = 0, ng = 0;
        for (int i = 0; i < D; i++) dot += (double)dv[b * D + i] * v[b * D + i];
        for (int i = 0; i < D; i++) nv += (double)v[b * D + i] * v[b * D + i], ng += (double)dv[b * D + i] * dv[b * D + i];
        EXPECT(fabs(dot) < 1e-5 * sqrt(nv * ng));
    }

    /* accumulate = 1 adds to what is there; NULL gradient gives the same loss */
    float twice[B * D];
    for (int i = 0; i < B * D; i++) twice[i] = dv[i];
    EXPECT(feed_loss_normalised_l1(v, t, B, D, scale, twice, 1) == loss);
    for (int i = 0; i < B * D; i++) EXPECT(twice[i] == dv[i] + dv[i]);
    EXPECT(feed_loss_normalised_l1(v, t, B, D, scale, NULL, 0) == loss);
}

static void check_ties_and_zero_norm(void) {
    enum { D = 12 };
    float v[2 * D], t[2 * D], dv[2 * D];
    fill(v, 2 * D, 21, 0.f);
    /* sample 0: teacher = 4 * student -> identical normalised maps, loss 0, sign(0) = 0 */
    for (int i = 0; i < D; i++) t[i] = 4.f * v[i];
    /* sample 1: student all zero -> the norm is clamped to 1e-12; PyTorch's gradient is g/1e-12 */
    fill(t + D, D, 22, 0.f);
    for (int i = 0; i < D; i++) v[D + i] = 0.f;

    double loss = feed_loss_normalised_l1(v, t, 2, D, 1.f, dv, 0);
    double nt = 0, expected = 0;
    for (int i = 0; i < D; i++) nt += (double)t[D + i] * t[D + i];
    for (int i = 0; i < D; i++) expected += fabs(t[D + i] / sqrt(nt));
    EXPECT_NEAR_REL(loss, expected / (2.0 * D), 1e-6);
    for (int i = 0; i < D; i++) EXPECT(dv[i] == 0.f);
    const double g_mag = 1.0 / (2.0 * D);
    for (int i = 0; i < D; i++) {
        double s = (t[D + i] > 0) ? -1.0 : (t[D + i] < 0 ? 1.0 : 0.0); /* sign(0 - w) */
        EXPECT_NEAR_REL(dv[D + i], s * g_mag / 1e-12, 1e-6);
    }
}

static void check_thread_count_independence(void) {
#ifdef _OPENMP
    const int batch = 130; /* three chunks of the implementation's 64-sample blocks */
    const size_t dim = 64 * 4 * 4;
    size_t n = (size_t)batch * dim;
    float *v = malloc(n * sizeof *v), *t = malloc(n * sizeof *t);
    float *d1 = malloc(n * sizeof *d1), *d2 = malloc(n * sizeof *d2);
    fill(v, n, 31, 0.5f);
    fill(t, n, 32, 0.5f);
    omp_set_num_threads(1);
    double l1 = feed_loss_normalised_l1(v, t, batch, dim, 500.f, d1, 0);
    omp_set_num_threads(2);
    double l2 = feed_loss_normalised_l1(v, t, batch, dim, 500.f, d2, 0);
    omp_set_num_threads(1);
    EXPECT(l1 == l2);
    EXPECT(memcmp(d1, d2, n * sizeof *d1) == 0);
    free(v), free(t), free(d1), free(d2);
#else
    EXPECT(1); /* built without OpenMP: one thread only */
#endif
}

int main(void) {
    check_against_finite_differences();
    check_ties_and_zero_norm();
    check_thread_count_independence();
    return feed_test_finish("test_feed_loss_gradcheck");
}
