/* feed_loss.c - FEED's normalised L1 loss and its gradient; see loss_feed.h. */
#include "feed/loss_feed.h"

#include "feed/check.h"

#include <math.h>

#ifdef _OPENMP
#define FEED_OMP(directive) _Pragma(directive)
#else
#define FEED_OMP(directive)
#endif

/* Samples reduced per parallel chunk: their partial sums sit on the stack, then are added in
 * sample order (no allocation, thread-count independent result). */
#define SAMPLES_PER_CHUNK 64

static float l2_norm(const float *x, size_t dim) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < dim; i++) sum += (double)x[i] * x[i];
    return (float)sqrt(sum);
}

static float sign_of(float x) { return (float)((x > 0.f) - (x < 0.f)); }

/* One sample: v, t, dv are (D). Returns sum_i |u_i - w_i|; writes scale-weighted dL/dv.
 * u = v / max(||v||, eps) in float, like F.normalize, so exact ties give sign 0 here too. */
static double sample_loss(const float *v, const float *t, size_t dim, float g_mag, float *dv, int accumulate) {
    const float eps = (float)FEED_LOSS_NORM_EPS;
    float norm_v = l2_norm(v, dim), norm_t = l2_norm(t, dim);
    float den_v = norm_v > eps ? norm_v : eps, den_t = norm_t > eps ? norm_t : eps;
    double abs_sum = 0, u_dot_sign = 0;
#pragma omp simd reduction(+ : abs_sum, u_dot_sign)
    for (size_t i = 0; i < dim; i++) {
        float u = v[i] / den_v, diff = u - t[i] / den_t;
        abs_sum += fabsf(diff);
        u_dot_sign += (double)u * sign_of(diff);
    }
    if (dv) {
        /* g_i = g_mag * s_i; dL/dv_i = (g_i - u_i <u,g>) / ||v||, or g_i / eps if clamped. */
        int clamped = !(norm_v >= eps);
        double u_dot_g = clamped ? 0.0 : g_mag * u_dot_sign;
        if (accumulate) {
#pragma omp simd
            for (size_t i = 0; i < dim; i++) {
                float u = v[i] / den_v, g = g_mag * sign_of(u - t[i] / den_t);
                dv[i] += (float)(((double)g - u * u_dot_g) / den_v);
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < dim; i++) {
                float u = v[i] / den_v, g = g_mag * sign_of(u - t[i] / den_t);
                dv[i] = (float)(((double)g - u * u_dot_g) / den_v);
            }
        }
    }
    return abs_sum;
}

double feed_loss_normalised_l1(const float *v, const float *t, int batch, size_t dim, float scale, float *dv,
                               int accumulate) {
    FEED_CHECK(batch > 0 && dim > 0, "internal: empty feature map given to the FEED loss", "batch %d, dim %zu",
               batch, dim);
    double count = (double)batch * (double)dim;
    float g_mag = (float)(scale / count); /* |g_i| = scale / (B*D) */
    double total = 0;
    for (int b0 = 0; b0 < batch; b0 += SAMPLES_PER_CHUNK) {
        int nb = batch - b0 < SAMPLES_PER_CHUNK ? batch - b0 : SAMPLES_PER_CHUNK;
        double partial[SAMPLES_PER_CHUNK];
        int parallel = (size_t)nb * dim >= 65536;
        (void)parallel;
        FEED_OMP("omp parallel for schedule(static) if(parallel)")
        for (int j = 0; j < nb; j++) {
            size_t off = (size_t)(b0 + j) * dim;
            partial[j] = sample_loss(v + off, t + off, dim, g_mag, dv ? dv + off : NULL, accumulate);
        }
        for (int j = 0; j < nb; j++) total += partial[j];
    }
    return total / count;
}
