/* conv.c - convolution and transposed convolution (stride, padding, groups, optional bias).
 *
 * Forward:  in (B,IC,H,W) -> out (B,OC,OH,OW), oneDNN picks the weight and output layouts.
 * Backward: diff weights (+ bias) with the weights' own layout (reordered if the backward
 * primitive prefers another), diff input unless the input needs no gradient.
 * PyTorch layouts: Conv2d weight (OC, IC/g, k, k); ConvTranspose2d weight (IC, OC/g, k, k).
 * Inference-only nets may fold a following batch norm (and its ReLU) into the convolution:
 * see fold.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"
#include "conv_priv.h"

static void conv_geometry(const feed_layer *L, const feed_value *in, const feed_value *out,
                          dnnl_dims_t strides, dnnl_dims_t pl, dnnl_dims_t pr) {
    int k = L->k, s = L->stride, p = L->pad;
    strides[0] = strides[1] = s;
    pl[0] = pl[1] = p;
    for (int d = 0; d < 2; d++) {
        dnnl_dim_t ih = in->dims[2 + d], oh = out->dims[2 + d];
        if (L->ops == &feed_deconv_ops)
            pr[d] = (ih - 1) * s + k - oh - p;
        else
            pr[d] = (oh - 1) * s + k - ih - p;
    }
}

static int weight_dims(const feed_layer *L, int ic, dnnl_dim_t *wd) {
    int g = L->groups, k = L->k, oc = L->oc;
    if (g == 1) {
        wd[0] = oc, wd[1] = ic, wd[2] = k, wd[3] = k;
        return 4;
    }
    wd[0] = g, wd[1] = oc / g, wd[2] = ic / g, wd[3] = k, wd[4] = k;
    return 5;
}

/* Winograd or direct: oneDNN's Winograd F(4x4,3x3) kernels (jit_wino_4x3) against its direct
 * ones, ResNet-56 at batch 128 on 2 threads (Zen 5, AVX-512), ms per call (fwd / bwd-data /
 * bwd-weights): 64 channels at 8x8: 0.7 / 0.64 / 1.09 vs 1.25 / 1.25 / 1.30; 32 at 16x16:
 * about even; 16 at 32x32: twice as slow (the transforms dominate). So Winograd is tried
 * for 3x3 stride-1 convolutions without groups with >= 64 input and output channels, and
 * kept only when oneDNN has a jit kernel for it (else its reference code would run). It is
 * deterministic like the direct kernels; its fp32 rounding differs from direct convolution
 * by ~1e-6 relative (tests/nn compares both with PyTorch). feed_engine_set_winograd(0) turns
 * it off. */
#define WINOGRAD_MIN_CHANNELS 64

static int winograd_candidate(const feed_layer *L, int ic) {
    return feed_engine_winograd() && L->ops == &feed_conv_ops && L->k == 3 && L->stride == 1 &&
           L->groups == 1 && ic >= WINOGRAD_MIN_CHANNELS && L->oc >= WINOGRAD_MIN_CHANNELS;
}

dnnl_primitive_desc_t conv_pd(feed_net *net, const feed_layer *L, int ic, const dnnl_convolution_desc_t *cd,
                              dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, int allow_fail) {
    if (winograd_candidate(L, ic)) {
        dnnl_convolution_desc_t w = *cd;
        w.alg_kind = dnnl_convolution_winograd;
        dnnl_primitive_desc_t pd = net_pd(net, &w, attr, hint, 1);
        if (pd && feed_pd_is_optimised(pd)) return pd;
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    return net_pd(net, cd, attr, hint, allow_fail);
}

static int is_winograd(const feed_op *o) {
    const char *impl = NULL;
    return o->pd && dnnl_primitive_desc_query(o->pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
           strncmp(impl, "jit_wino", 8) == 0;
}

int feed_net_winograd_primitives(const feed_net *net) {
    int n = 0;
    for (int l = 0; l < net->nl; l++) {
        const feed_layer *L = &net->L[l];
        if (L->ops != &feed_conv_ops || !L->priv) continue;
        const conv_priv *P = L->priv;
        n += is_winograd(&P->w.fwd) + is_winograd(&P->w.bwd_d) + is_winograd(&P->w.bwd_w) + is_winograd(&P->fold.op);
    }
    return n;
}

static void conv_plan(feed_net *net, feed_layer *L) {
    conv_priv *P = feed_xcalloc(1, sizeof *P, "conv");
    L->priv = P;
    int deconv = L->ops == &feed_deconv_ops;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    int ic = (int)in->dims[1], oc = L->oc, g = L->groups, k = L->k;
    dnnl_memory_desc_t src = net_in_md(net, L, 0, 1);
    dnnl_dim_t wd[5];
    int wnd = weight_dims(L, ic, wd);
    dnnl_memory_desc_t wany = net_md_any(net, wnd, wd);
    dnnl_dim_t bd[1] = {oc};
    dnnl_memory_desc_t bmd = feed_md_tag(1, bd, dnnl_a); /* bias: fp32 in bf16 nets too */
    /* activation layout: oneDNN's choice, or nhwc/nChw16c forced (FEED_NN_LAYOUT, for
     * benchmarking the alternatives) */
    dnnl_memory_desc_t dany = net_md_any(net, 4, out->dims);
    const char *lay = getenv("FEED_NN_LAYOUT");
    if (lay && (strcmp(lay, "nhwc") == 0 || strcmp(lay, "nChw16c") == 0)) {
        dnnl_format_tag_t t = lay[1] == 'h' ? dnnl_nhwc : dnnl_nChw16c;
        dany = net_md_tag(net, 4, out->dims, t);
        if (!net->v[L->in[0]].md_set && L->in[0] != 0) src = net_md_tag(net, 4, in->dims, t);
    }
    conv_geometry(L, in, out, P->strides, P->pl, P->pr);
    dnnl_prop_kind_t prop = net->opt.inference_only ? dnnl_forward_inference : dnnl_forward_training;
    dnnl_convolution_desc_t cd;
    if (deconv)
        CHECK_DNNL(dnnl_deconvolution_forward_desc_init(&cd, prop, dnnl_deconvolution_direct, &src, &wany,
                                                        L->bias ? &bmd : NULL, &dany, P->strides, P->pl, P->pr));
    else
        CHECK_DNNL(dnnl_convolution_forward_desc_init(&cd, prop, dnnl_convolution_direct, &src, &wany,
                                                      L->bias ? &bmd : NULL, &dany, P->strides, P->pl, P->pr));
    op_init(net, &P->w.fwd, conv_pd(net, L, ic, &cd, NULL, NULL, 0));
    dnnl_memory_desc_t smd = feed_pd_md(P->w.fwd.pd, dnnl_query_src_md, 0);
    net_set_md(net, L->in[0], &smd);
    dnnl_memory_desc_t dmd = feed_pd_md(P->w.fwd.pd, dnnl_query_dst_md, 0);
    net_set_md(net, L->out, &dmd);
    P->w.wmd = feed_pd_md(P->w.fwd.pd, dnnl_query_weights_md, 0);
    feed_weighted_master_md(net, &P->w);

    /* parameters, PyTorch layout */
    int64_t shape[4];
    dnnl_memory_desc_t umd;
    if (!deconv) {
        shape[0] = oc, shape[1] = ic / g, shape[2] = k, shape[3] = k;
        umd = feed_md_plain(wnd, wd); /* (g, oc/g, ic/g, k, k) plain == OIHW */
    } else {
        /* PyTorch (IC, OC/g, k, k) viewed as oneDNN (g, OC/g, IC/g, k, k) / (OC, IC, k, k) */
        shape[0] = ic, shape[1] = oc / g, shape[2] = k, shape[3] = k;
        dnnl_dim_t kk = (dnnl_dim_t)k * k, ocg = oc / g, icg = ic / g;
        if (g == 1) {
            dnnl_dim_t st[4] = {kk, ocg * kk, k, 1};
            umd = feed_md_strides(4, wd, st);
        } else {
            dnnl_dim_t st[5] = {icg * ocg * kk, kk, ocg * kk, k, 1};
            umd = feed_md_strides(5, wd, st);
        }
    }
    double fan_out = (double)shape[0] * k * k, fan_in = (double)shape[1] * k * k;
    L->param[0] = net_param(net, L, "weight", FEED_PARAM, FEED_F32, &P->w.emd, &umd, 4, shape,
                            FEED_INIT_NORMAL, sqrt(2.0 / fan_out));
    if (L->bias) {
        int64_t bs[1] = {oc};
        L->param[1] = net_param(net, L, "bias", FEED_PARAM, FEED_F32, &bmd, &bmd, 1, bs,
                                FEED_INIT_UNIFORM, 1.0 / sqrt(fan_in));
    }
}

static void conv_plan_bwd(feed_net *net, feed_layer *L) {
    conv_priv *P = L->priv;
    int deconv = L->ops == &feed_deconv_ops;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    int ic = (int)in->dims[1];
    dnnl_dim_t wd[5];
    int wnd = weight_dims(L, ic, wd);
    dnnl_memory_desc_t wany = net_md_any(net, wnd, wd); /* backward-data reads the kernels' copy */
    dnnl_memory_desc_t gany = feed_md_any(wnd, wd);     /* weight gradients are fp32 */
    dnnl_dim_t bd[1] = {L->oc};
    dnnl_memory_desc_t bmd = feed_md_tag(1, bd, dnnl_a);
    dnnl_alg_kind_t alg = deconv ? dnnl_deconvolution_direct : dnnl_convolution_direct;
    dnnl_convolution_desc_t cd;
    if (in->need_diff) {
        if (deconv)
            CHECK_DNNL(dnnl_deconvolution_backward_data_desc_init(&cd, alg, &in->md, &wany, &out->md,
                                                                  P->strides, P->pl, P->pr));
        else
            CHECK_DNNL(dnnl_convolution_backward_data_desc_init(&cd, alg, &in->md, &wany, &out->md,
                                                                P->strides, P->pl, P->pr));
        /* prefer the forward weights' layout (no per-step weight reorder) when an optimised
         * implementation takes it; else let oneDNN choose and reorder each backward */
        dnnl_convolution_desc_t cd2;
        dnnl_primitive_desc_t pd2 = NULL;
        if (deconv)
            CHECK_DNNL(dnnl_deconvolution_backward_data_desc_init(&cd2, alg, &in->md, &P->w.wmd, &out->md,
                                                                  P->strides, P->pl, P->pr));
        else
            CHECK_DNNL(dnnl_convolution_backward_data_desc_init(&cd2, alg, &in->md, &P->w.wmd, &out->md,
                                                                P->strides, P->pl, P->pr));
        pd2 = conv_pd(net, L, ic, &cd2, NULL, P->w.fwd.pd, 1);
        if (pd2 && !feed_pd_is_optimised(pd2)) {
            dnnl_primitive_desc_destroy(pd2);
            pd2 = NULL;
        }
        op_init(net, &P->w.bwd_d, pd2 ? pd2 : conv_pd(net, L, ic, &cd, NULL, P->w.fwd.pd, 0));
        P->w.wbwd_md = feed_pd_md(P->w.bwd_d.pd, dnnl_query_weights_md, 0);
        if (!feed_md_equal(&P->w.wbwd_md, &P->w.wmd)) {
            P->w.wbwd = net_alloc(net, feed_md_bytes(&P->w.wbwd_md), "conv bwd weights copy");
            P->w.wre_needed = 1;
        }
    }
    if (deconv)
        CHECK_DNNL(dnnl_deconvolution_backward_weights_desc_init(&cd, alg, &in->md, &gany, L->bias ? &bmd : NULL,
                                                                 &out->md, P->strides, P->pl, P->pr));
    else
        CHECK_DNNL(dnnl_convolution_backward_weights_desc_init(&cd, alg, &in->md, &gany, L->bias ? &bmd : NULL,
                                                               &out->md, P->strides, P->pl, P->pr));
    op_init(net, &P->w.bwd_w, conv_pd(net, L, ic, &cd, NULL, P->w.fwd.pd, 0));
    P->w.gw_md = feed_pd_md(P->w.bwd_w.pd, dnnl_query_diff_weights_md, 0);
    if (!feed_md_equal(&P->w.gw_md, &P->w.emd)) {
        P->w.gw_tmp = net_alloc(net, feed_md_bytes(&P->w.gw_md), "conv grad weights copy");
        P->w.gre_needed = 1;
    }
}

static void conv_bind(feed_net *net, feed_layer *L) {
    conv_priv *P = L->priv;
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    feed_entry *w = &net->e[L->param[0]];
    P->wmem = feed_weighted_bind_fwd(net, &P->w, w);
    op_arg(&P->w.fwd, DNNL_ARG_SRC, in->mem);
    op_arg(&P->w.fwd, DNNL_ARG_WEIGHTS, P->wmem);
    op_arg(&P->w.fwd, DNNL_ARG_DST, out->mem);
    feed_entry *b = L->bias ? &net->e[L->param[1]] : NULL;
    if (b) op_arg(&P->w.fwd, DNNL_ARG_BIAS, net_mem(net, &b->md, b->data));
    op_bind_scratchpad(net, &P->w.fwd);
    conv_fold_bind(net, L);
    if (!net->has_bwd) return;
    feed_weighted_bind_bwd(net, &P->w, in, out, w, P->wmem, b ? net_mem(net, &b->md, b->grad) : NULL);
}

static void conv_forward(feed_net *net, feed_layer *L, int train) {
    conv_priv *P = L->priv;
    if (P->fold.active) {
        conv_fold_forward(net, L);
        return;
    }
    op_run(&P->w.fwd);
}

static void conv_backward(feed_net *net, feed_layer *L) {
    feed_weighted_backward(net, L, &((conv_priv *)L->priv)->w);
}

static void conv_destroy(feed_layer *L) {
    conv_priv *P = L->priv;
    if (!P) return;
    feed_weighted_free(&P->w);
    conv_fold_destroy(L);
    free(P);
    L->priv = NULL;
}

const feed_layer_ops feed_conv_ops = {
    .type = "conv", .plan = conv_plan, .plan_bwd = conv_plan_bwd, .bind = conv_bind,
    .forward = conv_forward, .backward = conv_backward, .destroy = conv_destroy,
    .bwd_needs_in = 1,
};
const feed_layer_ops feed_deconv_ops = {
    .type = "deconv", .plan = conv_plan, .plan_bwd = conv_plan_bwd, .bind = conv_bind,
    .forward = conv_forward, .backward = conv_backward, .destroy = conv_destroy,
    .bwd_needs_in = 1,
};

static int add_conv_like(feed_nb *nb, const feed_layer_ops *ops, const char *name, int in, int oc,
                         int k, int stride, int pad, int opad, int groups, int bias) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv, "pass a value id from the builder", "bad input %d", in);
    feed_value *x = &net->v[in];
    FEED_CHECK(x->ndims == 4, "convolutions take (B,C,H,W)", "conv '%s' on a %d-D value", name, x->ndims);
    FEED_CHECK(groups >= 1 && x->dims[1] % groups == 0 && oc % groups == 0, "channels must divide by groups",
               "conv '%s': %lld in, %d out, %d groups", name, (long long)x->dims[1], oc, groups);
    FEED_CHECK(k >= 1 && stride >= 1 && pad >= 0, "check kernel/stride/padding", "conv '%s' geometry", name);
    dnnl_dim_t od[4] = {x->dims[0], oc, 0, 0};
    for (int d = 0; d < 2; d++) {
        dnnl_dim_t ih = x->dims[2 + d];
        od[2 + d] = ops == &feed_deconv_ops ? (ih - 1) * stride - 2 * pad + k + opad
                                            : (ih + 2 * pad - k) / stride + 1;
        FEED_CHECK(od[2 + d] >= 1, "input too small for this kernel", "conv '%s' output size", name);
    }
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, ops, name, 1, ins, 4, od);
    L->oc = oc, L->k = k, L->stride = stride, L->pad = pad, L->opad = opad, L->groups = groups, L->bias = bias;
    return L->out;
}

int feed_nb_conv(feed_nb *nb, const char *name, int in, int out_channels, int kernel, int stride,
                 int pad, int groups, int bias) {
    return add_conv_like(nb, &feed_conv_ops, name, in, out_channels, kernel, stride, pad, 0, groups, bias);
}

int feed_nb_deconv(feed_nb *nb, const char *name, int in, int out_channels, int kernel, int stride,
                   int pad, int output_padding, int groups, int bias) {
    FEED_CHECK(output_padding >= 0 && output_padding < stride, "output_padding < stride (PyTorch rule)",
               "deconv '%s' output_padding %d", name, output_padding);
    return add_conv_like(nb, &feed_deconv_ops, name, in, out_channels, kernel, stride, pad, output_padding,
                         groups, bias);
}
