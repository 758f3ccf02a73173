/* dropout.c - inverted dropout: train: out = in * keep / (1-p), keep ~ Bernoulli(1-p) from
 * the counter-based RNG at (seed ^ layer, FEED_RNG_DROPOUT, step * n + element), so masks are
 * reproducible and resumable; eval: out = in. The mask (one byte per element of the engine
 * layout) is kept for backward. */
#include <stdlib.h>
#include <string.h>

#include "feed/bf16.h"
#include "feed/rng.h"
#include "nn_internal.h"

typedef struct dropout_priv {
    uint8_t *mask;
    size_t n;
    int last_train;
} dropout_priv;

static void dropout_plan(feed_net *net, feed_layer *L) {
    dropout_priv *P = feed_xcalloc(1, sizeof *P, "dropout");
    L->priv = P;
    dnnl_memory_desc_t md = net_in_md(net, L, 0, 0);
    net_set_md(net, L->out, &md);
    P->n = feed_md_bytes(&md) / net->aes;
    if (!net->opt.inference_only) P->mask = net_alloc(net, P->n, "dropout mask");
}

/* dst[i] = m[i] ? src[i] * scale : 0 over n elements of the net's activation type (bf16:
 * the product rounded once, as a bf16 kernel would). */
static void masked_scale(const feed_net *net, void *dst, const void *src, const uint8_t *m, float scale,
                         long long n) {
    if (net->aes == 2) {
        uint16_t *d = dst;
        const uint16_t *s = src;
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++) d[i] = m[i] ? feed_bf16_round(feed_bf16_float(s[i]) * scale) : 0;
    } else {
        float *d = dst;
        const float *s = src;
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++) d[i] = m[i] ? s[i] * scale : 0.0f;
    }
}

static void dropout_forward(feed_net *net, feed_layer *L, int train) {
    dropout_priv *P = L->priv;
    const float *x = net->v[L->in[0]].data;
    float *y = net->v[L->out].data;
    long long n = (long long)P->n;
    P->last_train = train;
    if (!train || L->p <= 0.0f) {
        net_vec_copy(net, y, x, P->n);
        return;
    }
    uint64_t seed = net->opt.seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(L->id + 1));
    uint64_t base = net->step * (uint64_t)P->n;
    float p = L->p, scale = 1.0f / (1.0f - L->p);
    uint8_t *m = P->mask;
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < n; i++) m[i] = feed_rng_uniform(seed, FEED_RNG_DROPOUT, base + (uint64_t)i) >= p;
    masked_scale(net, y, x, m, scale, n);
}

static void dropout_backward(feed_net *net, feed_layer *L) {
    dropout_priv *P = L->priv;
    if (!net->v[L->in[0]].need_diff) return;
    int acc;
    float *t = net_diff_target_ptr(net, L->in[0], &acc);
    const float *d = net->v[L->out].diff;
    if (!P->last_train || L->p <= 0.0f)
        net_vec_copy(net, t, d, P->n);
    else
        masked_scale(net, t, d, P->mask, 1.0f / (1.0f - L->p), (long long)P->n);
    net_diff_done(net, L->in[0], acc);
}

static void dropout_destroy(feed_layer *L) {
    free(L->priv);
    L->priv = NULL;
}

const feed_layer_ops feed_dropout_ops = {
    .type = "dropout", .plan = dropout_plan, .forward = dropout_forward, .backward = dropout_backward,
    .destroy = dropout_destroy,
};

int feed_nb_dropout(feed_nb *nb, int in, float p) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv, "pass a value id from the builder", "bad input %d", in);
    FEED_CHECK(p >= 0.0f && p < 1.0f, "dropout probability must be in [0, 1)", "dropout p=%g", (double)p);
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_dropout_ops, NULL, 1, ins, net->v[in].ndims, net->v[in].dims);
    L->p = p;
    return L->out;
}
