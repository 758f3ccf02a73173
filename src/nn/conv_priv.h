/* conv_priv.h - convolution layer state shared by conv.c and fold.c (internal). */
#ifndef FEED_CONV_PRIV_H
#define FEED_CONV_PRIV_H

#include "nn_internal.h"

/* Inference-only nets: conv -> BN [-> ReLU] runs as one convolution with folded weights and
 * bias, the ReLU as a post-op (fold.c). */
typedef struct conv_fold {
    int active;
    int bn, add;         /* folded BN and add layer indices (-1: none) */
    int other;           /* the add's other operand (value id), read by a binary post-op */
    int out;             /* value the convolution now writes (the last folded layer's output) */
    feed_op op;          /* conv with bias (+ binary add, + eltwise relu post-ops) */
    float *w_plain, *w_fold, *b_fold; /* plain OIHW scratch, folded weights (engine layout), bias */
    dnnl_memory_desc_t w_plain_md, wf_md;
    feed_reorder to_plain, to_engine;
} conv_fold;

typedef struct conv_priv {
    feed_weighted w;
    dnnl_dims_t strides, pl, pr;
    dnnl_memory_t wmem;
    conv_fold fold;
} conv_priv;

/* net_pd for a direct convolution descriptor, or for its Winograd twin where that applies
 * (see conv.c); ic = input channels. */
dnnl_primitive_desc_t conv_pd(feed_net *net, const feed_layer *L, int ic, const dnnl_convolution_desc_t *cd,
                              dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, int allow_fail);

void conv_fold_plan(feed_net *net, feed_layer *L);
void conv_fold_bind(feed_net *net, feed_layer *L);
void conv_fold_forward(feed_net *net, feed_layer *L);
void conv_fold_destroy(feed_layer *L);

#endif
