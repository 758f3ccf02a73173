/* at_loss.c - attention maps and the attention-transfer loss; see loss_at.h. */
#include "feed/loss_at.h"

#include <math.h>

#include "feed/check.h"

#define NORM_EPS 1e-12
/* Samples reduced per parallel chunk (partial sums on the stack, added in sample order). */
#define SAMPLES_PER_CHUNK 64

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

/* One sample: returns sum_i (q_i - qt_i)^2 and adds scale-weighted dL/dx to dx. */
static double sample_loss(const float *x, const float *qt, int channels, size_t dim, float g_mag, float *q,
                          float *dx) {
    double norm = channel_mean_of_squares(x, channels, dim, q);
    int clamped = !(norm >= NORM_EPS);
    float den = (float)(clamped ? NORM_EPS : norm);
    double sq = 0, q_dot_g = 0;
    for (size_t i = 0; i < dim; i++) {
        q[i] /= den;
        double d = (double)q[i] - qt[i];
        sq += d * d;
        q_dot_g += q[i] * (g_mag * d);
    }
    if (!dx) return sq;
    if (clamped) q_dot_g = 0;
    for (size_t i = 0; i < dim; i++) {
        double g = g_mag * ((double)q[i] - qt[i]);
        q[i] = (float)((g - q[i] * q_dot_g) / den); /* q now holds da */
    }
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (size_t)c * dim;
        float *dxc = dx + (size_t)c * dim;
        for (size_t i = 0; i < dim; i++) dxc[i] += (float)((double)q[i] * 2.0 * xc[i] / channels);
    }
    return sq;
}

double feed_at_loss(const float *x, const float *qt, int batch, int channels, size_t dim, float scale,
                    float *q_scratch, float *dx) {
    FEED_CHECK(batch > 0 && channels > 0 && dim > 0, "internal: empty map given to the AT loss",
               "batch %d, channels %d, dim %zu", batch, channels, dim);
    double count = (double)batch * (double)dim;
    float g_mag = (float)(2.0 * scale / count);
    double total = 0;
    for (int b0 = 0; b0 < batch; b0 += SAMPLES_PER_CHUNK) {
        int nb = batch - b0 < SAMPLES_PER_CHUNK ? batch - b0 : SAMPLES_PER_CHUNK;
        double partial[SAMPLES_PER_CHUNK];
        int parallel = (size_t)nb * channels * dim >= 65536;
        (void)parallel;
#pragma omp parallel for schedule(static) if (parallel)
        for (int j = 0; j < nb; j++) {
            size_t b = (size_t)(b0 + j);
            partial[j] = sample_loss(x + b * channels * dim, qt + b * dim, channels, dim, g_mag,
                                     q_scratch + b * dim, dx ? dx + b * channels * dim : NULL);
        }
        for (int j = 0; j < nb; j++) total += partial[j];
    }
    return total / count;
}
