/* weighted.c - what convolutions and linear layers share: binding and running the backward
 * pass through the weight-layout reorders, and freeing (struct feed_weighted in nn_internal.h). */
#include "nn_internal.h"

void feed_weighted_master_md(feed_net *net, feed_weighted *W) {
    W->emd = net->adt == dnnl_f32 ? W->wmd : feed_md_retype(&W->wmd, dnnl_f32);
}

dnnl_memory_t feed_weighted_bind_fwd(feed_net *net, feed_weighted *W, const feed_entry *w) {
    if (net->adt == dnnl_f32) return net_mem(net, &W->wmd, w->data);
    W->wlow = net_alloc(net, feed_md_bytes(&W->wmd), "bf16 weights");
    feed_reorder_plan(&W->wcast, &W->emd, w->data, &W->wmd, W->wlow);
    if (net->ncasts == net->cap_casts) {
        net->cap_casts = net->cap_casts ? 2 * net->cap_casts : 32;
        net->casts = feed_xrealloc(net->casts, sizeof *net->casts * (size_t)net->cap_casts, "weight casts");
    }
    net->casts[net->ncasts++] = W;
    return net_mem(net, &W->wmd, W->wlow);
}

void feed_weighted_bind_bwd(feed_net *net, feed_weighted *W, const feed_value *in, const feed_value *out,
                            const feed_entry *w, dnnl_memory_t wmem, dnnl_memory_t gbias) {
    if (W->bwd_d.p) {
        if (W->wre_needed) feed_reorder_plan(&W->wre, &W->wmd, W->wlow ? W->wlow : w->data, &W->wbwd_md, W->wbwd);
        op_arg(&W->bwd_d, DNNL_ARG_DIFF_DST, out->dmem);
        op_arg(&W->bwd_d, DNNL_ARG_WEIGHTS, W->wre_needed ? net_mem(net, &W->wbwd_md, W->wbwd) : wmem);
        op_arg(&W->bwd_d, DNNL_ARG_DIFF_SRC, in->dmem);
        op_bind_scratchpad(net, &W->bwd_d);
    }
    op_arg(&W->bwd_w, DNNL_ARG_SRC, in->mem);
    op_arg(&W->bwd_w, DNNL_ARG_DIFF_DST, out->dmem);
    if (W->gre_needed) {
        op_arg(&W->bwd_w, DNNL_ARG_DIFF_WEIGHTS, net_mem(net, &W->gw_md, W->gw_tmp));
        feed_reorder_plan(&W->gre, &W->gw_md, W->gw_tmp, &W->emd, w->grad);
    } else {
        op_arg(&W->bwd_w, DNNL_ARG_DIFF_WEIGHTS, net_mem(net, &W->emd, w->grad));
    }
    if (gbias) op_arg(&W->bwd_w, DNNL_ARG_DIFF_BIAS, gbias);
    op_bind_scratchpad(net, &W->bwd_w);
}

void feed_weighted_backward(feed_net *net, feed_layer *L, feed_weighted *W) {
    op_run(&W->bwd_w);
    if (W->gre_needed) feed_reorder_run(&W->gre);
    if (W->bwd_d.p) { /* planned only when the input needs a gradient */
        if (W->wre_needed) feed_reorder_run(&W->wre);
        int acc;
        op_arg(&W->bwd_d, DNNL_ARG_DIFF_SRC, net_diff_target(net, L->in[0], &acc));
        op_run(&W->bwd_d);
        net_diff_done(net, L->in[0], acc);
    }
}

void feed_weighted_free(feed_weighted *W) {
    op_free(&W->fwd);
    op_free(&W->bwd_d);
    op_free(&W->bwd_w);
    feed_reorder_free(&W->wre);
    feed_reorder_free(&W->gre);
    feed_reorder_free(&W->wcast);
}
