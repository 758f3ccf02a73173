/* nn_internal.h - what layers and the net planner share (not a public header).
 *
 * A net is a list of layers in forward (topological) order over a list of values
 * (activation tensors). Each layer type is a small vtable (feed_layer_ops):
 *
 *   plan(net, L)      forward primitives from the input layouts; sets the output layout and
 *                     registers parameters (net_param)
 *   plan_bwd(net, L)  backward primitives (training nets only)
 *   bind(net, L)      after buffers are assigned: memory objects and argument lists
 *   forward(net, L, train), backward(net, L)   execute only
 *
 * Backward contributions to an input value's gradient: the first one writes, later ones go
 * through a scratch buffer and are added (net_diff_target / net_diff_done); the add layer
 * instead aliases or defers (net_defer) so identity paths cost no copy.
 */
#ifndef FEED_NN_INTERNAL_H
#define FEED_NN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "feed/check.h"
#include "feed/engine.h"
#include "feed/net.h"
#include "feed/tensor.h"

#define FEED_MAX_DEFER 4
#define FEED_OP_MAX_ARGS 16

typedef struct feed_value {
    int ndims;
    dnnl_dim_t dims[4];
    dnnl_memory_desc_t md;
    int md_set;
    size_t bytes;
    int producer; /* layer index, -1: net input */
    int nconsumers;
    int need_diff;
    int tap;        /* tap index or -1 */
    int is_output;
    int diff_alias; /* value whose diff buffer this one shares, -1: own */
    int data_alias; /* value whose activation buffer this one shares (folded layers), -1: own */
    int no_alias;   /* must own its diff buffer */
    /* plan */
    int f_start, f_end, d_start, d_end;
    /* buffers */
    float *data, *diff;
    dnnl_memory_t mem, dmem, smem; /* smem: same md over the accumulate scratch */
    /* runtime (backward) */
    int written;
    int ndef;
    const float *def[FEED_MAX_DEFER];
} feed_value;

typedef struct feed_net feed_net;
typedef struct feed_layer feed_layer;
typedef struct feed_weighted feed_weighted;

typedef struct feed_layer_ops {
    const char *type;
    void (*plan)(feed_net *net, feed_layer *L);
    void (*plan_bwd)(feed_net *net, feed_layer *L);
    void (*bind)(feed_net *net, feed_layer *L);
    void (*forward)(feed_net *net, feed_layer *L, int train);
    void (*backward)(feed_net *net, feed_layer *L);
    void (*destroy)(feed_layer *L);
    int bwd_needs_in;   /* backward reads the input activations */
    int bwd_needs_out;  /* backward reads the output activation */
    int fuses_finalize; /* backward folds its output's deferred gradients in itself */
} feed_layer_ops;

/* A primitive with its argument list (filled at bind time). */
typedef struct feed_op {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    int nargs;
    dnnl_exec_arg_t args[FEED_OP_MAX_ARGS];
} feed_op;

struct feed_layer {
    const feed_layer_ops *ops;
    char name[96];
    int id;
    int nin, in[2], out;
    /* hyper-parameters (meaning per layer type) */
    int oc, k, stride, pad, opad, groups, bias, relu;
    float alpha, p;
    int alias_in[2], defer_in[2]; /* add: how the gradient reaches each input */
    int param[6];                 /* entry indices, -1 unused */
    int folded;                   /* inference: computed by a convolution's post-ops (fold.c) */
    void *priv;
};

typedef struct feed_entry {
    feed_param_info info;
    char *name;
    dnnl_memory_desc_t md;      /* engine layout */
    dnnl_memory_desc_t user_md; /* PyTorch layout as a oneDNN descriptor */
    float *data, *grad;
    int64_t i64;
    int init;      /* FEED_INIT_* */
    double init_a; /* std (normal) or bound (uniform) */
} feed_entry;

enum { FEED_INIT_ZERO, FEED_INIT_ONE, FEED_INIT_NORMAL, FEED_INIT_UNIFORM };

typedef struct feed_tap {
    char name[32];
    int v;
    float *plain, *gplain, *geng;
    feed_reorder get, put;
    feed_reorder get16; /* bf16 nets: engine layout -> plain bf16 at the caller's address (feed_net_tap_bf16) */
    int pending;
} feed_tap;

struct feed_net {
    int built;
    feed_net_options opt;
    int has_bwd;
    feed_value *v;
    int nv, cap_v;
    feed_layer *L;
    int nl, cap_l;
    feed_entry *e;
    int ne, cap_e;
    feed_tap *taps;
    int ntaps;
    int output;
    /* parameter arenas */
    size_t plen, blen;
    float *pbuf, *gbuf;
    /* activation slots */
    int nslots;
    float **slots;
    size_t *slot_bytes;
    size_t planned_bytes;
    /* oneDNN scratchpad (shared) and the gradient-accumulation scratch */
    size_t scratchpad_bytes, acc_bytes;
    void *scratchpad;
    float *acc;
    dnnl_primitive_attr_t attr; /* user scratchpad mode */
    /* edges */
    feed_reorder in_re, out_re, ingrad_re, dout_re;
    float *in_stage, *out_plain, *dout_stage, *ingrad_plain;
    dnnl_memory_desc_t in_plain_md, out_plain_md;
    uint64_t step;
    int last_train;
    /* precision: activation (and activation-gradient) data type and element size */
    dnnl_data_type_t adt;
    size_t aes;
    feed_weighted **casts; /* bf16 nets: weighted layers whose bf16 weight copy follows the master */
    int ncasts, cap_casts;
    int n_reference;          /* primitives running oneDNN's reference code */
    char first_reference[96]; /* the first of them: "<kind> (<implementation>)" */
    /* data-parallel replicas (feed_net_set_replicas); rep.count = 0 when alone */
    feed_net_replicas rep;
    size_t *layer_grad_from; /* [nl] lowest gradient-arena offset of layer l's parameters, or
                                SIZE_MAX: where grads_final_from goes after layer l's backward */
    int params_dirty;
    /* FEED_NN_PROFILE=1: seconds per layer, forward and backward (printed by feed_net_free) */
    double *prof_fwd, *prof_bwd;
    /* owned resources released by feed_net_free */
    void **allocs;
    int nallocs, cap_allocs;
    dnnl_memory_t *mems;
    int nmems, cap_mems;
};

/* ---- net.c services for layers ---- */
feed_layer *net_add_layer(feed_net *net, const feed_layer_ops *ops, const char *name, int nin,
                          const int *in, int ndims, const dnnl_dim_t *out_dims);
/* Input i's layout; if the input is the net input and still open, can_any=1 returns a
 * format-`any` descriptor (the layer then calls net_set_md with what the primitive chose),
 * can_any=0 fixes it to plain NCHW. */
dnnl_memory_desc_t net_in_md(feed_net *net, feed_layer *L, int i, int can_any);
void net_set_md(feed_net *net, int vid, const dnnl_memory_desc_t *md);
/* Activation descriptors in the net's precision (f32 or bf16): format `any` or a tag. */
dnnl_memory_desc_t net_md_any(const feed_net *net, int ndims, const dnnl_dim_t *dims);
dnnl_memory_desc_t net_md_tag(const feed_net *net, int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag);
/* Elements of value v's buffer (its bytes / element size, padding included). */
static inline size_t net_value_elems(const feed_net *net, const feed_value *v) { return v->bytes / net->aes; }
/* Activation-typed vector helpers (n elements of the net's activation type). */
void net_vec_add(const feed_net *net, void *dst, const void *src, size_t n);
void net_vec_copy(const feed_net *net, void *dst, const void *src, size_t n);
/* Primitive descriptor with the net's attributes (user scratchpad); attr NULL = default.
 * Returns NULL if allow_fail and the primitive is unimplemented. */
dnnl_primitive_desc_t net_pd(feed_net *net, const void *op_desc, dnnl_primitive_attr_t attr,
                             const_dnnl_primitive_desc_t hint, int allow_fail);
void op_init(feed_net *net, feed_op *o, dnnl_primitive_desc_t pd);
/* 1 if the implementation oneDNN picked is a JIT/brgemm one (not a reference fallback). */
int feed_pd_is_optimised(const_dnnl_primitive_desc_t pd);
void op_arg(feed_op *o, int arg, dnnl_memory_t m);
void op_run(feed_op *o);
void op_free(feed_op *o);
/* Register a parameter/buffer of layer L named "<L->name>.<suffix>". pt_shape has pt_ndims
 * entries; md is the engine layout, user_md the PyTorch layout. Returns the entry index. */
int net_param(feed_net *net, feed_layer *L, const char *suffix, int kind, int dtype,
              const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *user_md, int pt_ndims,
              const int64_t *pt_shape, int init, double init_a);
/* Backward: where to write the gradient contribution for input value vid. */
dnnl_memory_t net_diff_target(feed_net *net, int vid, int *acc);
float *net_diff_target_ptr(feed_net *net, int vid, int *acc);
void net_diff_done(feed_net *net, int vid, int acc);
void net_defer(feed_net *net, int vid, const float *src);
/* Memory over the shared scratchpad for a primitive. */
void op_bind_scratchpad(feed_net *net, feed_op *o);
/* Memory object owned by the net (destroyed with it). */
dnnl_memory_t net_mem(feed_net *net, const dnnl_memory_desc_t *md, void *data);
void *net_alloc(feed_net *net, size_t bytes, const char *what);

static inline size_t md_floats(const dnnl_memory_desc_t *md) { return feed_md_bytes(md) / sizeof(float); }

size_t feed_net_debug_value(feed_net *net, const char *name, int diff, float *plain);

/* A layer with a weight (convolution, transposed convolution, linear): its forward,
 * backward-data and backward-weights primitives, and the reorders between the weight layout
 * of the forward (the parameter arena's) and the layouts the backward kernels want (wre:
 * weights -> wbwd before backward-data; gre: gw_tmp -> the gradient arena after
 * backward-weights). The plan/bind code of each layer fills it in. */
typedef struct feed_weighted {
    feed_op fwd, bwd_d, bwd_w;
    /* wmd: the weights the forward kernel reads (bf16 in a bf16 net); emd: the parameter
     * arena's fp32 master layout, wmd's blocking in fp32 (== wmd in an fp32 net) */
    dnnl_memory_desc_t wmd, emd, wbwd_md, gw_md;
    float *wbwd, *gw_tmp;
    void *wlow;         /* bf16 nets: the kernels' bf16 copy of the weights (wmd), else NULL */
    feed_reorder wcast; /* master (emd) -> wlow, run by net_cast_weights when parameters changed */
    feed_reorder wre, gre;
    int wre_needed, gre_needed;
} feed_weighted;
/* After the forward primitive is planned (W->wmd set): W->emd, the layout to register the
 * weight entry with. */
void feed_weighted_master_md(feed_net *net, feed_weighted *W);
/* At bind: the memory the forward reads the weights from (the master in fp32, the bf16 copy
 * in bf16 nets, which is registered for conversion). */
dnnl_memory_t feed_weighted_bind_fwd(feed_net *net, feed_weighted *W, const feed_entry *w);
/* Bind the backward primitives (training nets): w is the weight's entry, wmem its memory in
 * the forward layout, gbias the bias gradient's memory or NULL. */
void feed_weighted_bind_bwd(feed_net *net, feed_weighted *W, const feed_value *in, const feed_value *out,
                            const feed_entry *w, dnnl_memory_t wmem, dnnl_memory_t gbias);
/* Backward of input 0: weight gradient, then (if the input needs one) its gradient. */
void feed_weighted_backward(feed_net *net, feed_layer *L, feed_weighted *W);
void feed_weighted_free(feed_weighted *W);

/* Element addressing in a 4-D activation layout that loops written in C walk (shortcut A,
 * synchronised BN): plain strides (nchw, nhwc, ...) or one inner channel block (nChw16c,
 * nChw8c). Channels past C in the last block are padding. */
typedef struct feed_layout4 {
    dnnl_dim_t off0, st[4];
    int cblk; /* channel block size (1 = none) */
} feed_layout4;
/* 1 and *l filled for those layouts, else 0. */
int feed_layout4_try(const dnnl_memory_desc_t *md, feed_layout4 *l);
/* The same, ending the job (internal error naming `what`) on any other layout. */
void feed_layout4_of(const dnnl_memory_desc_t *md, feed_layout4 *l, const char *what);
static inline size_t feed_off4(const feed_layout4 *l, dnnl_dim_t n, dnnl_dim_t c, dnnl_dim_t h, dnnl_dim_t w) {
    return (size_t)(l->off0 + n * l->st[0] + (c / l->cblk) * l->st[1] + h * l->st[2] + w * l->st[3] + c % l->cblk);
}

/* For fold.c: the BN layer's parameter arrays. */
void feed_bn_params(feed_net *net, int layer, const float **w, const float **b, const float **rm,
                    const float **rv);

/* bf16 passes of the engine's own (bf16_loops.c; AVX512-BF16, only called in bf16 nets), each
 * element combined in fp32 and rounded once:
 *   feed_bf16_vec_add: dst += src over n values;
 *   feed_bf16_add_grad_finalize: the residual add's output gradient, in place:
 *   d = relu'(y) * ((written ? d : 0) + d0 + d1), d0/d1 the deferred gradients or NULL. */
void feed_bf16_vec_add(uint16_t *dst, const uint16_t *src, size_t n);
void feed_bf16_add_grad_finalize(uint16_t *d, const uint16_t *y, const uint16_t *d0, const uint16_t *d1, size_t n,
                                 int written, int relu);

/* Layer registration (one file each). */
extern const feed_layer_ops feed_conv_ops, feed_deconv_ops, feed_bn_ops, feed_eltwise_ops,
    feed_add_ops, feed_maxpool_ops, feed_gap_ops, feed_linear_ops, feed_dropout_ops,
    feed_shortcut_a_ops;

#endif
