/* bn.c - batch normalization (2-D, per channel), optionally with a fused ReLU.
 *
 * Training: batch statistics (oneDNN, biased variance) normalise; the running statistics
 * follow PyTorch: running_mean = 0.9*running_mean + 0.1*mean,
 * running_var = 0.9*running_var + 0.1*var*N/(N-1) (unbiased), num_batches_tracked += 1.
 * eps = 1e-5. Eval: running statistics (oneDNN use_global_stats).
 * With relu=1 the ReLU is fused (dnnl_fuse_norm_relu); its bit mask workspace is kept for
 * backward. Parameters: weight (C), bias (C); buffers running_mean, running_var,
 * num_batches_tracked.
 *
 * Synchronised BN (net->rep.sum set, feed_net_set_replicas; training mode only): the layer
 * behaves as one BN over the global batch of rep.count replicas of B samples each,
 * N_g = count*B*H*W values per channel.
 *   Forward: fwd_train gives the local mean/var (C); the replicas combine them with the
 *   stable form mean = avg_r mean_r, var = avg_r (var_r + (mean_r - mean)^2) (two sums: the
 *   second needs the global mean); fwd_sync (use_global_stats, bound to those statistics)
 *   then normalises and fills the ReLU workspace. Running statistics use N_g.
 *   Backward: with global statistics mean, sigma = sqrt(var + eps), xhat = (x - mean)/sigma
 *   and dy_m = dy masked by the fused ReLU,
 *     dx = gamma/sigma * (dy_m - S_shift/N_g - xhat * S_scale/N_g),
 *   S_shift = sum(dy_m), S_scale = sum(dy_m * xhat) over all replicas. bwd_sync
 *   (use_global_stats) gives gamma/sigma * dy_m and the local sums (the parameter gradients,
 *   which stay local: the trainer reduces every parameter gradient itself); one sum of
 *   [S_scale | S_shift] (2C) makes them global and a C loop adds a_c*(x - mean) + b_c to this
 *   layer's dx contribution, a_c = -gamma*S_scale/(N_g*sigma^2), b_c = -gamma*S_shift/(N_g*sigma)
 *   (x - mean rather than a_c*x - a_c*mean: no cancellation when |mean| >> sigma). No input
 *   gradient planned: no backward sum (all replicas skip it alike).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

typedef struct bn_priv {
    feed_op fwd_train, fwd_eval, bwd_train, bwd_eval;
    /* synchronised BN: use_global_stats primitives bound to mean/var (the global statistics) */
    feed_op fwd_sync, bwd_sync;
    float *mean, *var; /* batch statistics (C); the global ones in synchronised BN */
    float *sync;       /* synchronised BN scratch (4C): [0,2C) what is summed, [2C,4C) a, b */
    feed_layout4 lay;  /* the input's (= output's, = gradients') layout, for the dx loop */
    int lay_ok;        /* lay is a layout the loop walks (checked when synchronised BN runs) */
    void *ws;
    dnnl_memory_desc_t ws_md, cmd;
    int has_ws;
    int last_train, last_sync;
} bn_priv;

static unsigned bn_flags(const feed_layer *L) {
    return dnnl_use_scale | dnnl_use_shift | (L->relu ? dnnl_fuse_norm_relu : 0);
}

static void bn_plan(feed_net *net, feed_layer *L) {
    bn_priv *P = feed_xcalloc(1, sizeof *P, "bn");
    L->priv = P;
    dnnl_memory_desc_t md = net_in_md(net, L, 0, 0);
    net_set_md(net, L->out, &md);
    int C = (int)net->v[L->in[0]].dims[1];
    dnnl_dim_t cd[1] = {C};
    P->cmd = feed_md_tag(1, cd, dnnl_a);
    dnnl_batch_normalization_desc_t d;
    if (!net->opt.inference_only) {
        CHECK_DNNL(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &md, BN_EPS, bn_flags(L)));
        op_init(net, &P->fwd_train, net_pd(net, &d, NULL, NULL, 0));
        /* eval in a training net: forward_training + global stats keeps the ReLU workspace
         * so backward works in eval mode too */
        CHECK_DNNL(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &md, BN_EPS,
                                                              bn_flags(L) | dnnl_use_global_stats));
        op_init(net, &P->fwd_eval, net_pd(net, &d, NULL, NULL, 0));
        /* the same for synchronised BN, bound to the batch statistics instead (bn_bind) */
        op_init(net, &P->fwd_sync, net_pd(net, &d, NULL, NULL, 0));
        if (L->relu) {
            P->ws_md = feed_pd_md(P->fwd_train.pd, dnnl_query_workspace_md, 0);
            dnnl_memory_desc_t w2 = feed_pd_md(P->fwd_eval.pd, dnnl_query_workspace_md, 0);
            size_t b = feed_md_bytes(&P->ws_md), b2 = feed_md_bytes(&w2);
            FEED_CHECK(feed_md_equal(&P->ws_md, &w2), "internal", "BN workspace layouts differ (%zu, %zu)", b, b2);
            P->ws = net_alloc(net, b, "bn workspace");
            P->has_ws = 1;
        }
        P->lay_ok = feed_layout4_try(&md, &P->lay);
        P->sync = net_alloc(net, 4 * (size_t)C * sizeof(float), "bn sync");
    } else {
        CHECK_DNNL(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_inference, &md, BN_EPS,
                                                              bn_flags(L) | dnnl_use_global_stats));
        op_init(net, &P->fwd_eval, net_pd(net, &d, NULL, NULL, 0));
    }
    P->mean = net_alloc(net, (size_t)C * sizeof(float), "bn mean");
    P->var = net_alloc(net, (size_t)C * sizeof(float), "bn var");
    int64_t shape[1] = {C};
    L->param[0] = net_param(net, L, "weight", FEED_PARAM, FEED_F32, &P->cmd, &P->cmd, 1, shape, FEED_INIT_ONE, 0);
    L->param[1] = net_param(net, L, "bias", FEED_PARAM, FEED_F32, &P->cmd, &P->cmd, 1, shape, FEED_INIT_ZERO, 0);
    L->param[2] = net_param(net, L, "running_mean", FEED_BUFFER, FEED_F32, &P->cmd, &P->cmd, 1, shape,
                            FEED_INIT_ZERO, 0);
    L->param[3] = net_param(net, L, "running_var", FEED_BUFFER, FEED_F32, &P->cmd, &P->cmd, 1, shape,
                            FEED_INIT_ONE, 0);
    L->param[4] = net_param(net, L, "num_batches_tracked", FEED_BUFFER, FEED_I64, NULL, NULL, 0, NULL,
                            FEED_INIT_ZERO, 0);
}

static void bn_plan_bwd(feed_net *net, feed_layer *L) {
    bn_priv *P = L->priv;
    dnnl_memory_desc_t md = net->v[L->in[0]].md;
    dnnl_batch_normalization_desc_t d;
    CHECK_DNNL(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &md, &md, BN_EPS, bn_flags(L)));
    op_init(net, &P->bwd_train, net_pd(net, &d, NULL, P->fwd_train.pd, 0));
    CHECK_DNNL(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &md, &md, BN_EPS,
                                                           bn_flags(L) | dnnl_use_global_stats));
    op_init(net, &P->bwd_eval, net_pd(net, &d, NULL, P->fwd_eval.pd, 0));
    op_init(net, &P->bwd_sync, net_pd(net, &d, NULL, P->fwd_sync.pd, 0));
}

static void bn_bind(feed_net *net, feed_layer *L) {
    bn_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_memory_t scale = net_mem(net, &P->cmd, net->e[L->param[0]].data);
    dnnl_memory_t shift = net_mem(net, &P->cmd, net->e[L->param[1]].data);
    dnnl_memory_t rmean = net_mem(net, &P->cmd, net->e[L->param[2]].data);
    dnnl_memory_t rvar = net_mem(net, &P->cmd, net->e[L->param[3]].data);
    dnnl_memory_t bmean = net_mem(net, &P->cmd, P->mean);
    dnnl_memory_t bvar = net_mem(net, &P->cmd, P->var);
    dnnl_memory_t ws = P->has_ws ? net_mem(net, &P->ws_md, P->ws) : NULL;
    /* train and sync read/write the batch statistics, eval the running ones */
    feed_op *fw[3] = {&P->fwd_train, &P->fwd_sync, &P->fwd_eval};
    for (int i = 0; i < 3; i++) {
        feed_op *o = fw[i];
        if (!o->p) continue;
        op_arg(o, DNNL_ARG_SRC, in->mem);
        op_arg(o, DNNL_ARG_DST, out->mem);
        op_arg(o, DNNL_ARG_MEAN, i < 2 ? bmean : rmean);
        op_arg(o, DNNL_ARG_VARIANCE, i < 2 ? bvar : rvar);
        op_arg(o, DNNL_ARG_SCALE, scale);
        op_arg(o, DNNL_ARG_SHIFT, shift);
        if (ws) op_arg(o, DNNL_ARG_WORKSPACE, ws);
        op_bind_scratchpad(net, o);
    }
    if (!net->has_bwd) return;
    dnnl_memory_t gscale = net_mem(net, &P->cmd, net->e[L->param[0]].grad);
    dnnl_memory_t gshift = net_mem(net, &P->cmd, net->e[L->param[1]].grad);
    feed_op *bw[3] = {&P->bwd_train, &P->bwd_sync, &P->bwd_eval};
    for (int i = 0; i < 3; i++) {
        feed_op *o = bw[i];
        op_arg(o, DNNL_ARG_SRC, in->mem);
        op_arg(o, DNNL_ARG_MEAN, i < 2 ? bmean : rmean);
        op_arg(o, DNNL_ARG_VARIANCE, i < 2 ? bvar : rvar);
        op_arg(o, DNNL_ARG_SCALE, scale);
        op_arg(o, DNNL_ARG_SHIFT, shift);
        op_arg(o, DNNL_ARG_DIFF_DST, out->dmem);
        /* an input without gradient still needs somewhere to put diff_src */
        op_arg(o, DNNL_ARG_DIFF_SRC, in->need_diff ? in->dmem : net_mem(net, &in->md, net->acc));
        op_arg(o, DNNL_ARG_DIFF_SCALE, gscale);
        op_arg(o, DNNL_ARG_DIFF_SHIFT, gshift);
        if (ws) op_arg(o, DNNL_ARG_WORKSPACE, ws);
        op_bind_scratchpad(net, o);
    }
}

/* dx[n,c,h,w] += a[c] * (x[n,c,h,w] - m[c]) + b[c] over the logical elements of a (B,C,H,W)
 * layout (padding channels of the last block untouched). One task per (sample, channel block): a
 * block's channels are contiguous, so no two threads share its cache lines. */
static void bn_add_affine(const feed_layout4 *l, const dnnl_dim_t *dims, float *dx, const float *x,
                          const float *m, const float *a, const float *b) {
    dnnl_dim_t B = dims[0], C = dims[1], H = dims[2], W = dims[3];
    dnnl_dim_t nb = (C + l->cblk - 1) / l->cblk;
    long long tasks = (long long)(B * nb);
#pragma omp parallel for schedule(static)
    for (long long q = 0; q < tasks; q++) {
        dnnl_dim_t n = q / nb, c0 = (q % nb) * l->cblk;
        dnnl_dim_t cn = C - c0 < l->cblk ? C - c0 : l->cblk;
        for (dnnl_dim_t h = 0; h < H; h++)
            for (dnnl_dim_t w = 0; w < W; w++) {
                size_t o = feed_off4(l, n, c0, h, w);
                for (dnnl_dim_t i = 0; i < cn; i++) dx[o + i] += a[c0 + i] * (x[o + i] - m[c0 + i]) + b[c0 + i];
            }
    }
}

/* PyTorch running statistics from the batch statistics of N values per channel (unbiased
 * variance). */
static void bn_update_running(feed_net *net, feed_layer *L, double N) {
    bn_priv *P = L->priv;
    float unbias = N > 1 ? (float)(N / (N - 1)) : 1.0f;
    int C = (int)net->v[L->in[0]].dims[1];
    float *rm = net->e[L->param[2]].data, *rv = net->e[L->param[3]].data;
    for (int c = 0; c < C; c++) {
        rm[c] = (1.0f - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * P->mean[c];
        rv[c] = (1.0f - BN_MOMENTUM) * rv[c] + BN_MOMENTUM * (P->var[c] * unbias);
    }
    net->e[L->param[4]].i64++;
}

/* Local mean/var (C each, biased, B*H*W values per replica) -> those of the global batch, in
 * place. Every replica has the same count, so the global mean is the average of the local
 * ones and the variance the average of var_r + (mean_r - mean)^2: no E[x^2] - mean^2
 * cancellation. Two collective sums of C floats. */
static void bn_sync_stats(feed_net *net, bn_priv *P, int C) {
    float *g = P->sync, *m2 = P->sync + C;
    float inv = 1.0f / (float)net->rep.count;
    memcpy(g, P->mean, (size_t)C * sizeof(float));
    net->rep.sum(net->rep.ctx, g, C);
    for (int c = 0; c < C; c++) {
        g[c] *= inv;
        float d = P->mean[c] - g[c];
        m2[c] = P->var[c] + d * d;
    }
    net->rep.sum(net->rep.ctx, m2, C);
    for (int c = 0; c < C; c++) {
        P->mean[c] = g[c];
        P->var[c] = m2[c] * inv;
    }
}

static void bn_forward(feed_net *net, feed_layer *L, int train) {
    bn_priv *P = L->priv;
    P->last_train = train;
    P->last_sync = train && net->rep.sum;
    if (!train) {
        op_run(&P->fwd_eval);
        return;
    }
    feed_value *in = &net->v[L->in[0]];
    double N = (double)in->dims[0] * in->dims[2] * in->dims[3];
    op_run(&P->fwd_train);
    if (P->last_sync) {
        char buf[64];
        FEED_CHECK(P->lay_ok, "internal", "synchronised BN '%s': unsupported activation layout %s", L->name,
                   feed_md_str(&in->md, buf, sizeof buf));
        /* dst so far is normalised with the local statistics: redo it with the global ones */
        bn_sync_stats(net, P, (int)in->dims[1]);
        op_run(&P->fwd_sync);
        N *= net->rep.count;
    }
    bn_update_running(net, L, N);
}

/* Synchronised BN: dx (this layer's contribution only, layout P->lay) holds gamma/sigma*dy_m
 * from bwd_sync; add the terms of the global-batch gradient, a_c * (x - mean) + b_c (header).
 * The parameter gradients hold the local sums S_scale, S_shift (C each). */
static void bn_sync_dx(feed_net *net, feed_layer *L, float *dx) {
    bn_priv *P = L->priv;
    const feed_value *in = &net->v[L->in[0]];
    int C = (int)in->dims[1];
    float *S = P->sync, *a = P->sync + 2 * C, *b = P->sync + 3 * C;
    memcpy(S, net->e[L->param[0]].grad, (size_t)C * sizeof(float));
    memcpy(S + C, net->e[L->param[1]].grad, (size_t)C * sizeof(float));
    net->rep.sum(net->rep.ctx, S, 2 * C);
    double Ng = (double)net->rep.count * in->dims[0] * in->dims[2] * in->dims[3];
    const float *gamma = net->e[L->param[0]].data;
    for (int c = 0; c < C; c++) {
        double s2 = (double)P->var[c] + BN_EPS, k = (double)gamma[c] / Ng;
        a[c] = (float)(-k * S[c] / s2);
        b[c] = (float)(-k * S[C + c] / sqrt(s2));
    }
    bn_add_affine(&P->lay, in->dims, dx, in->data, P->mean, a, b);
}

static void bn_backward(feed_net *net, feed_layer *L) {
    bn_priv *P = L->priv;
    feed_op *o = P->last_sync ? &P->bwd_sync : P->last_train ? &P->bwd_train : &P->bwd_eval;
    feed_value *in = &net->v[L->in[0]];
    if (in->need_diff) {
        int acc;
        /* the primitive writes either the gradient itself or the accumulation scratch (added
           by net_diff_done): the sync correction goes on that buffer, this layer's part */
        float *dx = net_diff_target_ptr(net, L->in[0], &acc);
        op_arg(o, DNNL_ARG_DIFF_SRC, net_diff_target(net, L->in[0], &acc));
        op_run(o);
        if (P->last_sync) bn_sync_dx(net, L, dx);
        net_diff_done(net, L->in[0], acc);
    } else {
        op_run(o);
    }
}

static void bn_destroy(feed_layer *L) {
    bn_priv *P = L->priv;
    if (!P) return;
    op_free(&P->fwd_train);
    op_free(&P->fwd_eval);
    op_free(&P->bwd_train);
    op_free(&P->bwd_eval);
    op_free(&P->fwd_sync);
    op_free(&P->bwd_sync);
    free(P);
    L->priv = NULL;
}

const feed_layer_ops feed_bn_ops = {
    .type = "bn", .plan = bn_plan, .plan_bwd = bn_plan_bwd, .bind = bn_bind,
    .forward = bn_forward, .backward = bn_backward, .destroy = bn_destroy, .bwd_needs_in = 1,
};

int feed_nb_bn(feed_nb *nb, const char *name, int in, int relu) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv && net->v[in].ndims == 4, "batch norm takes (B,C,H,W)",
               "bn '%s' input %d", name, in);
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_bn_ops, name, 1, ins, 4, net->v[in].dims);
    L->relu = relu;
    return L->out;
}

/* For fold.c: the BN's batch-independent inference transform. */
void feed_bn_params(feed_net *net, int layer, const float **w, const float **b, const float **rm,
                    const float **rv) {
    feed_layer *L = &net->L[layer];
    *w = net->e[L->param[0]].data;
    *b = net->e[L->param[1]].data;
    *rm = net->e[L->param[2]].data;
    *rv = net->e[L->param[3]].data;
}
