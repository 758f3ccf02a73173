/* linear.c - fully connected layer (oneDNN inner product): (B,C[,H,W]) -> (B,out), plain
 * (B,out) output. PyTorch weight (out, C*H*W), bias (out); default PyTorch init
 * (uniform +-1/sqrt(fan_in) for both). */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"

typedef struct linear_priv {
    feed_weighted w;
    dnnl_memory_desc_t bmd;
} linear_priv;

static int wdims(const feed_net *net, const feed_layer *L, dnnl_dim_t *wd) {
    const feed_value *in = &net->v[L->in[0]];
    wd[0] = L->oc;
    for (int i = 1; i < in->ndims; i++) wd[i] = in->dims[i];
    return in->ndims;
}

static void linear_plan(feed_net *net, feed_layer *L) {
    linear_priv *P = feed_xcalloc(1, sizeof *P, "linear");
    L->priv = P;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_memory_desc_t src = net_in_md(net, L, 0, 1);
    dnnl_dim_t wd[4];
    int wnd = wdims(net, L, wd);
    dnnl_memory_desc_t wany = net_md_any(net, wnd, wd);
    dnnl_dim_t bd[1] = {L->oc};
    P->bmd = feed_md_tag(1, bd, dnnl_a); /* bias: fp32 in bf16 nets too */
    dnnl_memory_desc_t dst = net_md_tag(net, 2, out->dims, dnnl_ab);
    dnnl_inner_product_desc_t d;
    dnnl_prop_kind_t prop = net->opt.inference_only ? dnnl_forward_inference : dnnl_forward_training;
    CHECK_DNNL(dnnl_inner_product_forward_desc_init(&d, prop, &src, &wany, &P->bmd, &dst));
    op_init(net, &P->w.fwd, net_pd(net, &d, NULL, NULL, 0));
    dnnl_memory_desc_t smd = feed_pd_md(P->w.fwd.pd, dnnl_query_src_md, 0);
    net_set_md(net, L->in[0], &smd);
    net_set_md(net, L->out, &dst);
    P->w.wmd = feed_pd_md(P->w.fwd.pd, dnnl_query_weights_md, 0);
    feed_weighted_master_md(net, &P->w);
    size_t fan_in = 1;
    for (int i = 1; i < in->ndims; i++) fan_in *= (size_t)in->dims[i];
    dnnl_memory_desc_t umd = feed_md_plain(wnd, wd);
    int64_t ws[2] = {L->oc, (int64_t)fan_in}, bs[1] = {L->oc};
    double bound = 1.0 / sqrt((double)fan_in);
    L->param[0] = net_param(net, L, "weight", FEED_PARAM, FEED_F32, &P->w.emd, &umd, 2, ws, FEED_INIT_UNIFORM, bound);
    L->param[1] = net_param(net, L, "bias", FEED_PARAM, FEED_F32, &P->bmd, &P->bmd, 1, bs, FEED_INIT_UNIFORM, bound);
}

static void linear_plan_bwd(feed_net *net, feed_layer *L) {
    linear_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_dim_t wd[4];
    int wnd = wdims(net, L, wd);
    dnnl_memory_desc_t wany = net_md_any(net, wnd, wd); /* backward-data reads the kernels' copy */
    dnnl_memory_desc_t gany = feed_md_any(wnd, wd);     /* weight gradients are fp32 */
    dnnl_inner_product_desc_t d;
    if (in->need_diff) {
        CHECK_DNNL(dnnl_inner_product_backward_data_desc_init(&d, &in->md, &wany, &out->md));
        op_init(net, &P->w.bwd_d, net_pd(net, &d, NULL, P->w.fwd.pd, 0));
        P->w.wbwd_md = feed_pd_md(P->w.bwd_d.pd, dnnl_query_weights_md, 0);
        if (!feed_md_equal(&P->w.wbwd_md, &P->w.wmd)) {
            P->w.wre_needed = 1;
            P->w.wbwd = net_alloc(net, feed_md_bytes(&P->w.wbwd_md), "linear bwd weights");
        }
    }
    CHECK_DNNL(dnnl_inner_product_backward_weights_desc_init(&d, &in->md, &gany, &P->bmd, &out->md));
    op_init(net, &P->w.bwd_w, net_pd(net, &d, NULL, P->w.fwd.pd, 0));
    P->w.gw_md = feed_pd_md(P->w.bwd_w.pd, dnnl_query_diff_weights_md, 0);
    if (!feed_md_equal(&P->w.gw_md, &P->w.emd)) {
        P->w.gre_needed = 1;
        P->w.gw_tmp = net_alloc(net, feed_md_bytes(&P->w.gw_md), "linear grad weights");
    }
}

static void linear_bind(feed_net *net, feed_layer *L) {
    linear_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    feed_entry *w = &net->e[L->param[0]], *b = &net->e[L->param[1]];
    dnnl_memory_t wmem = feed_weighted_bind_fwd(net, &P->w, w);
    op_arg(&P->w.fwd, DNNL_ARG_SRC, in->mem);
    op_arg(&P->w.fwd, DNNL_ARG_WEIGHTS, wmem);
    op_arg(&P->w.fwd, DNNL_ARG_BIAS, net_mem(net, &P->bmd, b->data));
    op_arg(&P->w.fwd, DNNL_ARG_DST, out->mem);
    op_bind_scratchpad(net, &P->w.fwd);
    if (!net->has_bwd) return;
    feed_weighted_bind_bwd(net, &P->w, in, out, w, wmem, net_mem(net, &P->bmd, b->grad));
}

static void linear_forward(feed_net *net, feed_layer *L, int train) { op_run(&((linear_priv *)L->priv)->w.fwd); }

static void linear_backward(feed_net *net, feed_layer *L) {
    feed_weighted_backward(net, L, &((linear_priv *)L->priv)->w);
}

static void linear_destroy(feed_layer *L) {
    linear_priv *P = L->priv;
    if (!P) return;
    feed_weighted_free(&P->w);
    free(P);
    L->priv = NULL;
}

const feed_layer_ops feed_linear_ops = {
    .type = "linear", .plan = linear_plan, .plan_bwd = linear_plan_bwd, .bind = linear_bind,
    .forward = linear_forward, .backward = linear_backward, .destroy = linear_destroy, .bwd_needs_in = 1,
};

int feed_nb_linear(feed_nb *nb, const char *name, int in, int out_features) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv, "pass a value id from the builder", "bad input %d", in);
    FEED_CHECK(out_features >= 1, "check the class count", "linear '%s' with %d outputs", name, out_features);
    dnnl_dim_t od[2] = {net->v[in].dims[0], out_features};
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_linear_ops, name, 1, ins, 2, od);
    L->oc = out_features;
    return L->out;
}
