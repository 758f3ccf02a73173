/* at_loss.c - attention maps and the attention-transfer loss; see loss_at.h. */
#include "feed/loss_at.h"

#include <math.h>

#include "feed/check.h"

#define NORM_EPS 1e-12

/* a (D) = mean_c x_c^2 of one sample x (C, D), summed in double; returns ||a||_2. Blocks of
 * the D positions keep the channel loop streaming (contiguous rows, vectorised). */
#define POSITIONS_PER_BLOCK 256
static double channel_mean_of_squares(const float *x, int channels, size_t dim, float *a) {
    double norm2 = 0;
    for (size_t i0 = 0; i0 < dim; i0 += POSITIONS_PER_BLOCK) {
        size_t n = dim - i0 < POSITIONS_PER_BLOCK ? dim - i0 : POSITIONS_PER_BLOCK;
        double acc[POSITIONS_PER_BLOCK] = {0};
        for (int c = 0; c < channels; c++) {
            const float *xc = x + (size_t)c * dim + i0;
#pragma omp simd
            for (size_t i = 0; i < n; i++) acc[i] += (double)xc[i] * xc[i];
        }
        for (size_t i = 0; i < n; i++) {
            a[i0 + i] = (float)(acc[i] / channels);
            norm2 += (double)a[i0 + i] * a[i0 + i];
        }
    }
    return sqrt(norm2);
}

void feed_attention_map(const float *x, int batch, int channels, size_t dim, float *q) {
    int parallel = (size_t)batch * channels * dim >= 65536;
    (void)parallel;
#pragma omp parallel for schedule(static) if (parallel)
    for (int b = 0; b < batch; b++) {
        float *qb = q + (size_t)b * dim;
        double norm = channel_mean_of_squares(x + (size_t)b * channels * dim, channels, dim, qb);
        float den = (float)(norm > NORM_EPS ? norm : NORM_EPS);
        for (size_t i = 0; i < dim; i++) qb[i] /= den; /* as F.normalize: a / max(||a||, eps) in float */
    }
}

/* One sample b: the student's map q (D) once, each teacher's sum_i (q_i - qt_t,i)^2 into
 * sample_loss[t], and, if dx, the scale-weighted gradient of all teachers' losses added. */
static void sample_loss(const float *x, const float *const *qt, int n, size_t b, int channels, size_t dim,
                        float g_mag, float *q, double *sample_loss, float *dx) {
    double norm = channel_mean_of_squares(x, channels, dim, q);
    int clamped = !(norm >= NORM_EPS);
    float den = (float)(clamped ? NORM_EPS : norm);
    for (size_t i = 0; i < dim; i++) q[i] /= den;
    double q_dot_g = 0; /* sum_t <q, g_t> */
    for (int t = 0; t < n; t++) {
        const float *qtb = qt[t] + b * dim;
        double sq = 0, qg = 0;
        for (size_t i = 0; i < dim; i++) {
            double d = (double)q[i] - qtb[i];
            sq += d * d;
            qg += q[i] * (g_mag * d);
        }
        sample_loss[t] = sq;
        q_dot_g += qg;
    }
    if (!dx) return;
    if (clamped) q_dot_g = 0;
    double two_over_c = 2.0 / channels;
    for (size_t i = 0; i < dim; i++) { /* q[i] becomes da_i * 2 / C, da_i = (sum_t g_t,i - q_i sum_t <q, g_t>) / ||a|| */
        double g = 0;
        for (int t = 0; t < n; t++) g += g_mag * ((double)q[i] - qt[t][b * dim + i]);
        q[i] = (float)((g - q[i] * q_dot_g) / den * two_over_c);
    }
    for (int c = 0; c < channels; c++) { /* dA_ci = da_i * 2 A_ci / C */
        const float *xc = x + (size_t)c * dim;
        float *dxc = dx + (size_t)c * dim;
#pragma omp simd
        for (size_t i = 0; i < dim; i++) dxc[i] += q[i] * xc[i];
    }
}

void feed_at_loss(const float *x, const float *const *qt, int n, int batch, int channels, size_t dim, float scale,
                  float *q, double *sample_losses, double *loss, float *dx) {
    FEED_CHECK(n > 0 && batch > 0 && channels > 0 && dim > 0, "internal: empty map given to the AT loss",
               "teachers %d, batch %d, channels %d, dim %zu", n, batch, channels, dim);
    double count = (double)batch * (double)dim;
    float g_mag = (float)(2.0 * scale / count);
    int parallel = (size_t)batch * channels * dim >= 65536;
    (void)parallel;
#pragma omp parallel for schedule(static) if (parallel)
    for (int b = 0; b < batch; b++)
        sample_loss(x + (size_t)b * channels * dim, qt, n, (size_t)b, channels, dim, g_mag, q + (size_t)b * dim,
                    sample_losses + (size_t)b * n, dx ? dx + (size_t)b * channels * dim : NULL);
    for (int t = 0; t < n; t++) {
        double total = 0;
        for (int b = 0; b < batch; b++) total += sample_losses[(size_t)b * n + t]; /* sample order */
        loss[t] = total / count;
    }
}
