/* fold.c - inference-only nets: a convolution absorbs the layers after it.
 *
 *   conv -> BN [-> ReLU] [-> add(other) [-> ReLU]]   (or conv -> add(other) [-> ReLU], WRN)
 *   becomes one oneDNN convolution:
 *   weights w*g/sqrt(rv+eps) per output channel, bias b' = (b - rm)*g/sqrt(rv+eps) + beta,
 *   post-ops: binary add of `other` (full tensor), eltwise ReLU.
 *
 * Conditions: each intermediate value has this one consumer and is neither tapped nor the
 * output; the add's other operand is computed before this convolution runs, in the same
 * layout. The folded layers skip their forward; their outputs share the convolution's
 * buffer (value data_alias). Folded weights are recomputed on the first forward after the
 * parameters changed (feed_net_set, feed_net_params, feed_net_params_changed).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_priv.h"

/* The only consumer layer of value vid, or -1. */
static int sole_consumer(const feed_net *net, int vid) {
    const feed_value *v = &net->v[vid];
    if (v->nconsumers != 1 || v->tap >= 0 || v->is_output) return -1;
    for (int l = 0; l < net->nl; l++)
        for (int k = 0; k < net->L[l].nin; k++)
            if (net->L[l].in[k] == vid) return l;
    return -1;
}

static dnnl_primitive_desc_t fold_pd(feed_net *net, feed_layer *L, int other, int relu) {
    conv_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_dim_t wd[5];
    int g = L->groups, k = L->k, ic = (int)in->dims[1], oc = L->oc, wnd;
    if (g == 1)
        wd[0] = oc, wd[1] = ic, wd[2] = k, wd[3] = k, wnd = 4;
    else
        wd[0] = g, wd[1] = oc / g, wd[2] = ic / g, wd[3] = k, wd[4] = k, wnd = 5;
    dnnl_memory_desc_t wany = net_md_any(net, wnd, wd);
    dnnl_dim_t bd[1] = {oc};
    dnnl_memory_desc_t bmd = feed_md_tag(1, bd, dnnl_a);
    dnnl_convolution_desc_t cd;
    CHECK_DNNL(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &in->md,
                                                  &wany, &bmd, &out->md, P->strides, P->pl, P->pr));
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    CHECK_DNNL(dnnl_primitive_attr_create(&attr));
    CHECK_DNNL(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    CHECK_DNNL(dnnl_post_ops_create(&po));
    if (other >= 0) CHECK_DNNL(dnnl_post_ops_append_binary(po, dnnl_binary_add, &net->v[other].md));
    if (relu) CHECK_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    CHECK_DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_primitive_desc_t pd = conv_pd(net, L, ic, &cd, attr, NULL, 1);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

void conv_fold_plan(feed_net *net, feed_layer *L) {
    conv_priv *P = L->priv;
    conv_fold *F = &P->fold;
    F->bn = F->add = F->other = -1;
    int cur = L->out, relu = 0;
    int c = sole_consumer(net, cur);
    if (c >= 0 && net->L[c].ops == &feed_bn_ops) {
        F->bn = c;
        relu = net->L[c].relu;
        cur = net->L[c].out;
        c = relu ? -1 : sole_consumer(net, cur); /* relu(bn(.)) + x is not a post-op chain */
    } /* else: a bare conv -> add (WRN) folds the add alone */
    if (c >= 0 && net->L[c].ops == &feed_add_ops && !net->L[c].folded) {
        feed_layer *A = &net->L[c];
        int other = A->in[0] == cur ? A->in[1] : A->in[0];
        feed_value *ov = &net->v[other];
        if (other != cur && (ov->producer < L->id) && feed_md_equal(&ov->md, &net->v[cur].md) &&
            feed_md_equal(&net->v[A->out].md, &net->v[L->out].md)) {
            F->add = c;
            F->other = other;
            relu = A->relu;
        }
    }
    if (F->bn < 0 && F->add < 0) return;
    dnnl_primitive_desc_t pd = fold_pd(net, L, F->other, relu);
    if (!pd && F->add >= 0 && F->bn >= 0) { /* binary post-op not supported here: fold the BN only */
        F->add = F->other = -1;
        relu = net->L[F->bn].relu;
        pd = fold_pd(net, L, -1, relu);
    }
    if (!pd) return;
    op_init(net, &F->op, pd);
    F->active = 1;
    F->wf_md = feed_pd_md(pd, dnnl_query_weights_md, 0);
    F->w_plain_md = net->e[L->param[0]].user_md;
    F->w_plain = net_alloc(net, feed_md_bytes(&F->w_plain_md), "fold plain weights");
    F->w_fold = net_alloc(net, feed_md_bytes(&F->wf_md), "folded weights");
    F->b_fold = net_alloc(net, (size_t)L->oc * sizeof(float), "folded bias");
    /* the folded layers' outputs are this convolution's output */
    F->out = L->out;
    if (F->bn >= 0) {
        net->L[F->bn].folded = 1;
        net->v[net->L[F->bn].out].data_alias = L->out;
        F->out = net->L[F->bn].out;
    }
    if (F->add >= 0) {
        net->L[F->add].folded = 1;
        net->v[net->L[F->add].out].data_alias = L->out;
        F->out = net->L[F->add].out;
    }
}

void conv_fold_bind(feed_net *net, feed_layer *L) {
    conv_priv *P = L->priv;
    conv_fold *F = &P->fold;
    if (!F->active) return;
    feed_entry *w = &net->e[L->param[0]];
    feed_reorder_plan(&F->to_plain, &w->md, w->data, &F->w_plain_md, F->w_plain);
    feed_reorder_plan(&F->to_engine, &F->w_plain_md, F->w_plain, &F->wf_md, F->w_fold);
    dnnl_dim_t bd[1] = {L->oc};
    dnnl_memory_desc_t bmd = feed_md_tag(1, bd, dnnl_a);
    op_arg(&F->op, DNNL_ARG_SRC, net->v[L->in[0]].mem);
    op_arg(&F->op, DNNL_ARG_WEIGHTS, net_mem(net, &F->wf_md, F->w_fold));
    op_arg(&F->op, DNNL_ARG_BIAS, net_mem(net, &bmd, F->b_fold));
    op_arg(&F->op, DNNL_ARG_DST, net->v[F->out].mem);
    if (F->other >= 0) op_arg(&F->op, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, net->v[F->other].mem);
    op_bind_scratchpad(net, &F->op);
}

static void refold(feed_net *net, feed_layer *L) {
    conv_fold *F = &((conv_priv *)L->priv)->fold;
    const float *cb = L->bias ? net->e[L->param[1]].data : NULL;
    feed_reorder_run(&F->to_plain);
    if (F->bn < 0) { /* add only: the convolution's own weights and bias */
        for (int o = 0; o < L->oc; o++) F->b_fold[o] = cb ? cb[o] : 0.0f;
        feed_reorder_run(&F->to_engine);
        return;
    }
    const float *g, *beta, *rm, *rv;
    feed_bn_params(net, F->bn, &g, &beta, &rm, &rv);
    size_t per_oc = net->e[L->param[0]].info.numel / (size_t)L->oc;
    for (int o = 0; o < L->oc; o++) {
        float s = g[o] / sqrtf(rv[o] + 1e-5f);
        float *w = F->w_plain + (size_t)o * per_oc;
        for (size_t i = 0; i < per_oc; i++) w[i] *= s;
        F->b_fold[o] = ((cb ? cb[o] : 0.0f) - rm[o]) * s + beta[o];
    }
    feed_reorder_run(&F->to_engine);
}

void conv_fold_forward(feed_net *net, feed_layer *L) {
    conv_fold *F = &((conv_priv *)L->priv)->fold;
    if (net->params_dirty) refold(net, L);
    op_run(&F->op);
}

void conv_fold_destroy(feed_layer *L) {
    conv_fold *F = &((conv_priv *)L->priv)->fold;
    op_free(&F->op);
    feed_reorder_free(&F->to_plain);
    feed_reorder_free(&F->to_engine);
}
