/* pool.c - max pooling (kernel, stride, padding; PyTorch floor mode) and global average
 * pooling (B,C,H,W) -> (B,C,1,1). Max pooling keeps oneDNN's workspace (argmax) for backward. */
#include <stdlib.h>

#include "nn_internal.h"

typedef struct pool_priv {
    feed_op fwd, bwd;
    void *ws;
    dnnl_memory_desc_t ws_md;
    dnnl_alg_kind_t alg;
    dnnl_dims_t strides, kernel, pl, pr;
} pool_priv;

static void pool_plan(feed_net *net, feed_layer *L) {
    pool_priv *P = feed_xcalloc(1, sizeof *P, "pool");
    L->priv = P;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_memory_desc_t src = net_in_md(net, L, 0, 0);
    int global = L->ops == &feed_gap_ops;
    P->alg = global ? dnnl_pooling_avg_exclude_padding : dnnl_pooling_max;
    for (int d = 0; d < 2; d++) {
        P->kernel[d] = global ? in->dims[2 + d] : L->k;
        P->strides[d] = global ? 1 : L->stride;
        P->pl[d] = global ? 0 : L->pad;
        P->pr[d] = (out->dims[2 + d] - 1) * P->strides[d] + P->kernel[d] - in->dims[2 + d] - P->pl[d];
    }
    dnnl_memory_desc_t dany = net_md_any(net, 4, out->dims);
    dnnl_pooling_desc_t d;
    dnnl_prop_kind_t prop = net->opt.inference_only ? dnnl_forward_inference : dnnl_forward_training;
    CHECK_DNNL(dnnl_pooling_forward_desc_init(&d, prop, P->alg, &src, &dany, P->strides, P->kernel, P->pl, P->pr));
    op_init(net, &P->fwd, net_pd(net, &d, NULL, NULL, 0));
    dnnl_memory_desc_t dmd = feed_pd_md(P->fwd.pd, dnnl_query_dst_md, 0);
    net_set_md(net, L->out, &dmd);
    P->ws_md = feed_pd_md(P->fwd.pd, dnnl_query_workspace_md, 0);
    if (feed_md_bytes(&P->ws_md)) P->ws = net_alloc(net, feed_md_bytes(&P->ws_md), "pool workspace");
}

static void pool_plan_bwd(feed_net *net, feed_layer *L) {
    pool_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    if (!in->need_diff) return;
    dnnl_pooling_desc_t d;
    CHECK_DNNL(dnnl_pooling_backward_desc_init(&d, P->alg, &in->md, &out->md, P->strides, P->kernel, P->pl, P->pr));
    op_init(net, &P->bwd, net_pd(net, &d, NULL, P->fwd.pd, 0));
}

static void pool_bind(feed_net *net, feed_layer *L) {
    pool_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_memory_t ws = P->ws ? net_mem(net, &P->ws_md, P->ws) : NULL;
    op_arg(&P->fwd, DNNL_ARG_SRC, in->mem);
    op_arg(&P->fwd, DNNL_ARG_DST, out->mem);
    if (ws) op_arg(&P->fwd, DNNL_ARG_WORKSPACE, ws);
    op_bind_scratchpad(net, &P->fwd);
    if (!P->bwd.p) return;
    op_arg(&P->bwd, DNNL_ARG_DIFF_DST, out->dmem);
    op_arg(&P->bwd, DNNL_ARG_DIFF_SRC, in->dmem);
    if (ws) op_arg(&P->bwd, DNNL_ARG_WORKSPACE, ws);
    op_bind_scratchpad(net, &P->bwd);
}

static void pool_forward(feed_net *net, feed_layer *L, int train) { op_run(&((pool_priv *)L->priv)->fwd); }

static void pool_backward(feed_net *net, feed_layer *L) {
    pool_priv *P = L->priv;
    if (!P->bwd.p) return;
    int acc;
    op_arg(&P->bwd, DNNL_ARG_DIFF_SRC, net_diff_target(net, L->in[0], &acc));
    op_run(&P->bwd);
    net_diff_done(net, L->in[0], acc);
}

static void pool_destroy(feed_layer *L) {
    pool_priv *P = L->priv;
    if (!P) return;
    op_free(&P->fwd);
    op_free(&P->bwd);
    free(P);
    L->priv = NULL;
}

const feed_layer_ops feed_maxpool_ops = {
    .type = "maxpool", .plan = pool_plan, .plan_bwd = pool_plan_bwd, .bind = pool_bind,
    .forward = pool_forward, .backward = pool_backward, .destroy = pool_destroy,
};
const feed_layer_ops feed_gap_ops = {
    .type = "avgpool", .plan = pool_plan, .plan_bwd = pool_plan_bwd, .bind = pool_bind,
    .forward = pool_forward, .backward = pool_backward, .destroy = pool_destroy,
};

int feed_nb_maxpool(feed_nb *nb, int in, int kernel, int stride, int pad) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv && net->v[in].ndims == 4, "pooling takes (B,C,H,W)", "maxpool input %d", in);
    FEED_CHECK(kernel >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= kernel, "PyTorch requires pad <= kernel/2",
               "maxpool k=%d s=%d p=%d", kernel, stride, pad);
    feed_value *x = &net->v[in];
    dnnl_dim_t od[4] = {x->dims[0], x->dims[1], (x->dims[2] + 2 * pad - kernel) / stride + 1,
                        (x->dims[3] + 2 * pad - kernel) / stride + 1};
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_maxpool_ops, NULL, 1, ins, 4, od);
    L->k = kernel, L->stride = stride, L->pad = pad;
    return L->out;
}

int feed_nb_avgpool_global(feed_nb *nb, int in) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv && net->v[in].ndims == 4, "pooling takes (B,C,H,W)", "avgpool input %d", in);
    feed_value *x = &net->v[in];
    dnnl_dim_t od[4] = {x->dims[0], x->dims[1], 1, 1};
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_gap_ops, NULL, 1, ins, 4, od);
    return L->out;
}
