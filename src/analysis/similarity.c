/* similarity.c - linear CKA and ridge reconstruction between networks' final maps
 * (analyze.h), in the kernel form: everything goes through n x n Gram matrices of the n test
 * images (cblas_ssyrk / cblas_sgemm), so the cost is independent of how wide a map is once
 * the Grams exist, and p may exceed n. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feed/analyze.h"
#include "feed/check.h"
#include "feed/loader.h"
#include "feed/net.h"

/* LAPACK's Cholesky factorisation and solve (OpenBLAS exports them; Debian ships no
 * lapacke.h with it). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info);

struct feed_gram {
    int64_t n, p, nf;    /* images, features, images of the fit half */
    float *k_all;        /* n x n, maps centred by the mean over all n images */
    float *k_fit;        /* n x n, maps centred by the mean of the fit half [0, nf) */
    float *x_fit;        /* n x p, the maps centred the second way (ridge targets) */
    double *chol;        /* nf x nf: Cholesky factor of K_ff + lambda I, the ridge system from these maps */
    double *kef;         /* (n - nf) x nf: K_ef, held-out rows against the fit half */
};

float *feed_final_maps(feed_net *net, const feed_dataset *ds, int batch, int64_t n, int64_t *p_out, int map_dims[3]) {
    int d[4];
    FEED_CHECK(feed_net_tap(net, "final", d), "this is a bug", "network has no 'final' tap");
    const int64_t p = (int64_t)d[1] * d[2] * d[3];
    feed_loader_config lc = feed_loader_config_eval(batch);
    feed_loader *ld = feed_loader_create(ds, &lc);
    float *x = feed_xaligned(sizeof(float) * (size_t)batch * ds->channels * ds->height * ds->width, "input batch");
    int32_t *y = feed_xmalloc(sizeof(int32_t) * (size_t)batch, "labels");
    float *maps = feed_xmalloc(sizeof(float) * (size_t)n * (size_t)p, "final maps");
    for (int64_t s = 0, row = 0; row < n; s++) {
        int got = feed_loader_batch(ld, 0, s, x, y);
        feed_net_forward(net, x, 0);
        const float *m = feed_net_tap(net, "final", NULL); /* (B, C, H, W): a row per image */
        int64_t take = n - row < got ? n - row : got;
        memcpy(maps + row * p, m, sizeof(float) * (size_t)(take * p));
        row += take;
    }
    free(x), free(y);
    feed_loader_destroy(ld);
    *p_out = p;
    map_dims[0] = d[1], map_dims[1] = d[2], map_dims[2] = d[3];
    return maps;
}

/* x - the mean of rows [0, rows) of x, into out (n x p). */
static void centre(const float *x, int64_t n, int64_t p, int64_t rows, float *out) {
    double *mean = feed_xcalloc((size_t)p, sizeof(double), "feature means");
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < p; j++) mean[j] += x[i * p + j];
    for (int64_t j = 0; j < p; j++) mean[j] /= (double)rows;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < p; j++) out[i * p + j] = (float)(x[i * p + j] - mean[j]);
    free(mean);
}

/* K = X X^T (n x n, both triangles) of a row-major n x p matrix. */
static float *gram(const float *x, int64_t n, int64_t p) {
    float *k = feed_xmalloc(sizeof(float) * (size_t)(n * n), "Gram matrix");
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)p, 1.0f, x, (int)p, 0.0f, k, (int)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) k[i * n + j] = k[j * n + i];
    return k;
}

/* The ridge system of predicting any network from this one's maps, factorised once: the
 * same for every target network. lambda = 1e-3 x the mean of diag(K_ff). */
static void factor_ridge(feed_gram *g) {
    const int n = (int)g->n, nf = (int)g->nf, ne = n - nf;
    g->chol = feed_xmalloc(sizeof(double) * (size_t)nf * nf, "ridge system");
    double diag = 0;
    for (int i = 0; i < nf; i++) diag += g->k_fit[(size_t)i * n + i];
    const double lambda = 1e-3 * diag / nf;
    for (int i = 0; i < nf; i++)
        for (int j = 0; j < nf; j++) g->chol[(size_t)i * nf + j] = g->k_fit[(size_t)i * n + j] + (i == j ? lambda : 0.0);
    int info = 0;
    dpotrf_("U", &nf, g->chol, &nf, &info); /* symmetric: row- and column-major are the same matrix */
    FEED_CHECK(info == 0, "the maps may be constant or non-finite", "ridge: Cholesky failed (info %d)", info);
    g->kef = feed_xmalloc(sizeof(double) * (size_t)ne * nf, "kernel block");
    for (int i = 0; i < ne; i++)
        for (int k = 0; k < nf; k++) g->kef[(size_t)i * nf + k] = g->k_fit[(size_t)(nf + i) * n + k];
}

feed_gram *feed_gram_create(const float *x, int64_t n, int64_t p) {
    FEED_CHECK(n >= 4, "give at least 4 images", "%lld images for a Gram matrix", (long long)n);
    feed_gram *g = feed_xcalloc(1, sizeof *g, "Gram matrices");
    g->n = n, g->p = p, g->nf = n / 2;
    float *c = feed_xmalloc(sizeof(float) * (size_t)(n * p), "centred maps");
    centre(x, n, p, n, c);
    g->k_all = gram(c, n, p);
    free(c);
    g->x_fit = feed_xmalloc(sizeof(float) * (size_t)(n * p), "centred maps");
    centre(x, n, p, g->nf, g->x_fit);
    g->k_fit = gram(g->x_fit, n, p);
    factor_ridge(g);
    return g;
}

void feed_gram_free(feed_gram *g) {
    if (!g) return;
    free(g->k_all), free(g->k_fit), free(g->x_fit), free(g->chol), free(g->kef);
    free(g);
}

static double frobenius_dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double feed_linear_cka(const feed_gram *a, const feed_gram *b) {
    FEED_CHECK(a->n == b->n, "this is a bug", "CKA of %lld and %lld images", (long long)a->n, (long long)b->n);
    const int64_t nn = a->n * a->n;
    double ab = frobenius_dot(a->k_all, b->k_all, nn), aa = frobenius_dot(a->k_all, a->k_all, nn),
           bb = frobenius_dot(b->k_all, b->k_all, nn);
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

double feed_ridge_error(const feed_gram *a, const feed_gram *b) {
    FEED_CHECK(a->n == b->n, "this is a bug", "ridge over %lld and %lld images", (long long)a->n, (long long)b->n);
    const int n = (int)a->n, nf = (int)a->nf, ne = n - nf, q = (int)b->p;
    int info = 0;
    /* alpha = A^-1 Y_f, Y_f = b's fit-half maps (nf x q); column-major for LAPACK: q columns of nf */
    double *alpha = feed_xmalloc(sizeof(double) * (size_t)nf * q, "ridge coefficients");
    for (int i = 0; i < nf; i++)
        for (int j = 0; j < q; j++) alpha[(size_t)j * nf + i] = b->x_fit[(size_t)i * q + j];
    dpotrs_("U", &nf, &q, a->chol, &nf, alpha, &nf, &info);
    FEED_CHECK(info == 0, "this is a bug", "ridge: solve failed (info %d)", info);
    /* held-out predictions Y_e^ = K_ef alpha; residual and total sums of squares */
    double rss = 0, tss = 0;
    double *mean_e = feed_xcalloc((size_t)q, sizeof(double), "held-out means");
    for (int i = nf; i < n; i++)
        for (int j = 0; j < q; j++) mean_e[j] += b->x_fit[(size_t)i * q + j];
    for (int j = 0; j < q; j++) mean_e[j] /= ne;
    /* predictions (ne x q) = K_ef (ne x nf) alpha; alpha is q rows of nf (row-major) */
    double *pred = feed_xmalloc(sizeof(double) * (size_t)ne * q, "predictions");
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ne, q, nf, 1.0, a->kef, nf, alpha, nf, 0.0, pred, q);
    for (int i = 0; i < ne; i++)
        for (int j = 0; j < q; j++) {
            const double t = b->x_fit[(size_t)(nf + i) * q + j], r = t - pred[(size_t)i * q + j];
            rss += r * r;
            tss += (t - mean_e[j]) * (t - mean_e[j]);
        }
    free(pred);
    free(alpha), free(mean_e);
    return tss > 0 ? rss / tss : 0.0;
}
