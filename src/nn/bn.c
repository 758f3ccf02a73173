/* bn.c - batch normalization (2-D, per channel), optionally with a fused ReLU.
 *
 * Training: batch statistics (oneDNN, biased variance) normalise; the running statistics
 * follow PyTorch: running_mean = 0.9*running_mean + 0.1*mean,
 * running_var = 0.9*running_var + 0.1*var*N/(N-1) (unbiased), num_batches_tracked += 1.
 * eps = 1e-5. Eval: running statistics (oneDNN use_global_stats).
 * With relu=1 the ReLU is fused (dnnl_fuse_norm_relu); its bit mask workspace is kept for
 * backward. Parameters: weight (C), bias (C); buffers running_mean, running_var,
 * num_batches_tracked.
 */
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

typedef struct bn_priv {
    feed_op fwd_train, fwd_eval, bwd_train, bwd_eval;
    float *mean, *var; /* batch statistics (C) */
    void *ws;
    dnnl_memory_desc_t ws_md, cmd;
    int has_ws;
    int last_train;
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
        if (L->relu) {
            P->ws_md = feed_pd_md(P->fwd_train.pd, dnnl_query_workspace_md, 0);
            dnnl_memory_desc_t w2 = feed_pd_md(P->fwd_eval.pd, dnnl_query_workspace_md, 0);
            size_t b = feed_md_bytes(&P->ws_md), b2 = feed_md_bytes(&w2);
            FEED_CHECK(feed_md_equal(&P->ws_md, &w2), "internal", "BN workspace layouts differ (%zu, %zu)", b, b2);
            P->ws = net_alloc(net, b, "bn workspace");
            P->has_ws = 1;
        }
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
    feed_op *fw[2] = {&P->fwd_train, &P->fwd_eval};
    for (int i = 0; i < 2; i++) {
        feed_op *o = fw[i];
        if (!o->p) continue;
        op_arg(o, DNNL_ARG_SRC, in->mem);
        op_arg(o, DNNL_ARG_DST, out->mem);
        op_arg(o, DNNL_ARG_MEAN, i == 0 ? bmean : rmean);
        op_arg(o, DNNL_ARG_VARIANCE, i == 0 ? bvar : rvar);
        op_arg(o, DNNL_ARG_SCALE, scale);
        op_arg(o, DNNL_ARG_SHIFT, shift);
        if (ws) op_arg(o, DNNL_ARG_WORKSPACE, ws);
        op_bind_scratchpad(net, o);
    }
    if (!net->has_bwd) return;
    dnnl_memory_t gscale = net_mem(net, &P->cmd, net->e[L->param[0]].grad);
    dnnl_memory_t gshift = net_mem(net, &P->cmd, net->e[L->param[1]].grad);
    feed_op *bw[2] = {&P->bwd_train, &P->bwd_eval};
    for (int i = 0; i < 2; i++) {
        feed_op *o = bw[i];
        op_arg(o, DNNL_ARG_SRC, in->mem);
        op_arg(o, DNNL_ARG_MEAN, i == 0 ? bmean : rmean);
        op_arg(o, DNNL_ARG_VARIANCE, i == 0 ? bvar : rvar);
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

static void bn_forward(feed_net *net, feed_layer *L, int train) {
    bn_priv *P = L->priv;
    P->last_train = train;
    if (!train) {
        op_run(&P->fwd_eval);
        return;
    }
    op_run(&P->fwd_train);
    /* PyTorch running statistics (unbiased variance) */
    feed_value *in = &net->v[L->in[0]];
    double N = (double)in->dims[0] * in->dims[2] * in->dims[3];
    float unbias = N > 1 ? (float)(N / (N - 1)) : 1.0f;
    int C = (int)in->dims[1];
    float *rm = net->e[L->param[2]].data, *rv = net->e[L->param[3]].data;
    for (int c = 0; c < C; c++) {
        rm[c] = (1.0f - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * P->mean[c];
        rv[c] = (1.0f - BN_MOMENTUM) * rv[c] + BN_MOMENTUM * (P->var[c] * unbias);
    }
    net->e[L->param[4]].i64++;
}

static void bn_backward(feed_net *net, feed_layer *L) {
    bn_priv *P = L->priv;
    feed_op *o = P->last_train ? &P->bwd_train : &P->bwd_eval;
    feed_value *in = &net->v[L->in[0]];
    if (in->need_diff) {
        int acc;
        op_arg(o, DNNL_ARG_DIFF_SRC, net_diff_target(net, L->in[0], &acc));
        op_run(o);
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
