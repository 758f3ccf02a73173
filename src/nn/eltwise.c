/* eltwise.c - ReLU and LeakyReLU (oneDNN eltwise relu with alpha = negative slope).
 * Backward uses the output (relu_use_dst_for_bwd, valid for slope >= 0), so the input
 * activation need not be kept. */
#include <stdlib.h>

#include "nn_internal.h"

typedef struct elt_priv {
    feed_op fwd, bwd;
} elt_priv;

static void elt_plan(feed_net *net, feed_layer *L) {
    elt_priv *P = feed_xcalloc(1, sizeof *P, "eltwise");
    L->priv = P;
    dnnl_memory_desc_t md = net_in_md(net, L, 0, 0);
    net_set_md(net, L->out, &md);
    dnnl_eltwise_desc_t d;
    dnnl_prop_kind_t prop = net->opt.inference_only ? dnnl_forward_inference : dnnl_forward_training;
    CHECK_DNNL(dnnl_eltwise_forward_desc_init(&d, prop, dnnl_eltwise_relu, &md, L->alpha, 0.0f));
    op_init(net, &P->fwd, net_pd(net, &d, NULL, NULL, 0));
}

static void elt_plan_bwd(feed_net *net, feed_layer *L) {
    elt_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]];
    if (!in->need_diff) return;
    dnnl_memory_desc_t md = in->md;
    dnnl_eltwise_desc_t d;
    CHECK_DNNL(dnnl_eltwise_backward_desc_init(&d, dnnl_eltwise_relu_use_dst_for_bwd, &md, &md, L->alpha, 0.0f));
    op_init(net, &P->bwd, net_pd(net, &d, NULL, P->fwd.pd, 0));
}

static void elt_bind(feed_net *net, feed_layer *L) {
    elt_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    op_arg(&P->fwd, DNNL_ARG_SRC, in->mem);
    op_arg(&P->fwd, DNNL_ARG_DST, out->mem);
    op_bind_scratchpad(net, &P->fwd);
    if (!P->bwd.p) return;
    op_arg(&P->bwd, DNNL_ARG_DST, out->mem);
    op_arg(&P->bwd, DNNL_ARG_DIFF_DST, out->dmem);
    op_arg(&P->bwd, DNNL_ARG_DIFF_SRC, in->dmem);
    op_bind_scratchpad(net, &P->bwd);
}

static void elt_forward(feed_net *net, feed_layer *L, int train) { op_run(&((elt_priv *)L->priv)->fwd); }

static void elt_backward(feed_net *net, feed_layer *L) {
    elt_priv *P = L->priv;
    if (!P->bwd.p) return;
    int acc;
    op_arg(&P->bwd, DNNL_ARG_DIFF_SRC, net_diff_target(net, L->in[0], &acc));
    op_run(&P->bwd);
    net_diff_done(net, L->in[0], acc);
}

static void elt_destroy(feed_layer *L) {
    elt_priv *P = L->priv;
    if (!P) return;
    op_free(&P->fwd);
    op_free(&P->bwd);
    free(P);
    L->priv = NULL;
}

const feed_layer_ops feed_eltwise_ops = {
    .type = "relu", .plan = elt_plan, .plan_bwd = elt_plan_bwd, .bind = elt_bind,
    .forward = elt_forward, .backward = elt_backward, .destroy = elt_destroy, .bwd_needs_out = 1,
};

static int add_elt(feed_nb *nb, int in, float alpha) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv, "pass a value id from the builder", "bad input %d", in);
    FEED_CHECK(alpha >= 0.0f, "negative slope must be >= 0", "leaky relu slope %g", (double)alpha);
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_eltwise_ops, NULL, 1, ins, net->v[in].ndims, net->v[in].dims);
    L->alpha = alpha;
    return L->out;
}

int feed_nb_relu(feed_nb *nb, int in) { return add_elt(nb, in, 0.0f); }
int feed_nb_leaky_relu(feed_nb *nb, int in, float negative_slope) { return add_elt(nb, in, negative_slope); }
