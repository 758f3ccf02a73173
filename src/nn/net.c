/* net.c - graph building, planning (layouts, primitives, buffers) and execution.
 *
 * Planning happens once in feed_nb_build():
 *   1. every layer's forward primitive is created from its inputs' layouts (format `any` for
 *      outputs, so oneDNN picks blocked layouts such as nChw16c and they stay end to end);
 *   2. training nets: every backward primitive (diff layouts = forward layouts);
 *   3. parameters: one flat arena (and a gradient arena with the same offsets), initialised
 *      in PyTorch layout from the counter-based RNG and reordered into the engine layout;
 *   4. buffers: each activation and gradient gets a live interval on the timeline
 *      fwd(0) .. fwd(n-1), bwd(n-1) .. bwd(0); intervals share "slots" greedily, so gradients
 *      reuse the memory of activations that are no longer needed;
 *   5. every layer binds its memory objects and argument lists.
 * forward()/backward() then only execute.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "conv_priv.h"
#include "feed/rng.h"
#include "nn_internal.h"

/* ------------------------------------------------------------------ small utilities */

void *net_alloc(feed_net *net, size_t bytes, const char *what) {
    if (net->nallocs == net->cap_allocs) {
        net->cap_allocs = net->cap_allocs ? 2 * net->cap_allocs : 64;
        net->allocs = feed_xrealloc(net->allocs, sizeof(void *) * (size_t)net->cap_allocs, "net allocs");
    }
    size_t b = bytes ? (bytes + 63) / 64 * 64 : 64;
    void *p = feed_xaligned(b, what);
    memset(p, 0, b);
    net->allocs[net->nallocs++] = p;
    return p;
}

dnnl_memory_t net_mem(feed_net *net, const dnnl_memory_desc_t *md, void *data) {
    if (net->nmems == net->cap_mems) {
        net->cap_mems = net->cap_mems ? 2 * net->cap_mems : 128;
        net->mems = feed_xrealloc(net->mems, sizeof(dnnl_memory_t) * (size_t)net->cap_mems, "net mems");
    }
    dnnl_memory_t m = feed_mem(md, data);
    net->mems[net->nmems++] = m;
    return m;
}

static int bwd_time(const feed_net *net, int layer) { return 2 * net->nl - 1 - layer; }
static void print_profile(const feed_net *net);

/* ------------------------------------------------------------------ builder */

feed_nb *feed_nb_create(int batch, int channels, int h, int w) {
    FEED_CHECK(batch >= 1 && channels >= 1 && h >= 1 && w >= 1, "check the model spec",
               "bad input shape %dx%dx%dx%d", batch, channels, h, w);
    feed_net *net = feed_xcalloc(1, sizeof *net, "net");
    net->output = -1;
    net->cap_v = 64;
    net->v = feed_xcalloc((size_t)net->cap_v, sizeof(feed_value), "net values");
    feed_value *v = &net->v[net->nv++];
    v->ndims = 4;
    v->dims[0] = batch;
    v->dims[1] = channels;
    v->dims[2] = h;
    v->dims[3] = w;
    v->producer = -1;
    v->tap = -1;
    v->diff_alias = -1;
    v->data_alias = -1;
    return (feed_nb *)net;
}

void feed_nb_free(feed_nb *nb) { feed_net_free((feed_net *)nb); }

static void check_value(const feed_net *net, int vid) {
    FEED_CHECK(vid >= 0 && vid < net->nv, "pass a value id returned by a feed_nb_* call",
               "bad value id %d (net has %d values)", vid, net->nv);
}

feed_layer *net_add_layer(feed_net *net, const feed_layer_ops *ops, const char *name, int nin,
                          const int *in, int ndims, const dnnl_dim_t *out_dims) {
    FEED_CHECK(!net->built, "add layers before feed_nb_build", "net already built");
    for (int i = 0; i < nin; i++) check_value(net, in[i]);
    dnnl_dim_t dims[4] = {1, 1, 1, 1}; /* out_dims may point into net->v, which may move */
    FEED_CHECK(ndims >= 1 && ndims <= 4, "internal", "value with %d dims", ndims);
    for (int i = 0; i < ndims; i++) dims[i] = out_dims[i];
    if (name && name[0])
        for (int i = 0; i < net->nl; i++)
            FEED_CHECK(strcmp(net->L[i].name, name) != 0, "layer names must be unique",
                       "duplicate layer name '%s'", name);
    if (net->nl == net->cap_l) {
        net->cap_l = net->cap_l ? 2 * net->cap_l : 64;
        net->L = feed_xrealloc(net->L, sizeof(feed_layer) * (size_t)net->cap_l, "net layers");
    }
    if (net->nv == net->cap_v) {
        net->cap_v *= 2;
        net->v = feed_xrealloc(net->v, sizeof(feed_value) * (size_t)net->cap_v, "net values");
    }
    feed_layer *L = &net->L[net->nl];
    memset(L, 0, sizeof *L);
    L->ops = ops;
    L->id = net->nl++;
    if (name && name[0])
        snprintf(L->name, sizeof L->name, "%s", name);
    else
        snprintf(L->name, sizeof L->name, "%s%d", ops->type, L->id);
    L->nin = nin;
    for (int i = 0; i < nin; i++) L->in[i] = in[i];
    for (int i = 0; i < 6; i++) L->param[i] = -1;
    L->out = net->nv++;
    feed_value *v = &net->v[L->out];
    memset(v, 0, sizeof *v);
    v->ndims = ndims;
    for (int i = 0; i < ndims; i++) v->dims[i] = dims[i];
    v->producer = L->id;
    v->tap = -1;
    v->diff_alias = -1;
    v->data_alias = -1;
    return L;
}

int feed_nb_shape(const feed_nb *nb, int value, int dims[4]) {
    const feed_net *net = (const feed_net *)nb;
    check_value(net, value);
    const feed_value *v = &net->v[value];
    for (int i = 0; i < 4; i++) dims[i] = i < v->ndims ? (int)v->dims[i] : 1;
    return v->ndims;
}

void feed_nb_tap(feed_nb *nb, const char *tap_name, int value) {
    feed_net *net = (feed_net *)nb;
    check_value(net, value);
    FEED_CHECK(net->v[value].ndims == 2 || net->v[value].ndims == 4, "tap a (B, C) or (B, C, H, W) value",
               "tap '%s' on a %d-D value", tap_name, net->v[value].ndims);
    for (int i = 0; i < net->ntaps; i++)
        FEED_CHECK(strcmp(net->taps[i].name, tap_name) != 0, "tap names must be unique",
                   "duplicate tap '%s'", tap_name);
    net->taps = feed_xrealloc(net->taps, sizeof(feed_tap) * (size_t)(net->ntaps + 1), "taps");
    feed_tap *t = &net->taps[net->ntaps];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", tap_name);
    t->v = value;
    net->ntaps++;
}

void feed_nb_output(feed_nb *nb, int value) {
    feed_net *net = (feed_net *)nb;
    check_value(net, value);
    net->output = value;
}

/* ------------------------------------------------------------------ services for layers */

dnnl_memory_desc_t net_md_any(const feed_net *net, int ndims, const dnnl_dim_t *dims) {
    dnnl_memory_desc_t md = feed_md_any(ndims, dims);
    return net->adt == dnnl_f32 ? md : feed_md_retype(&md, net->adt);
}

dnnl_memory_desc_t net_md_tag(const feed_net *net, int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md = feed_md_tag(ndims, dims, tag);
    return net->adt == dnnl_f32 ? md : feed_md_retype(&md, net->adt);
}

void net_vec_add(const feed_net *net, void *dst, const void *src, size_t n) {
    if (net->adt == dnnl_bf16)
        feed_bf16_vec_add(dst, src, n);
    else
        feed_vec_add(dst, src, n);
}

void net_vec_copy(const feed_net *net, void *dst, const void *src, size_t n) {
    if (dst != src) memcpy(dst, src, n * net->aes);
}

dnnl_memory_desc_t net_in_md(feed_net *net, feed_layer *L, int i, int can_any) {
    feed_value *v = &net->v[L->in[i]];
    if (v->md_set) return v->md;
    if (can_any) return net_md_any(net, v->ndims, v->dims);
    dnnl_memory_desc_t md = feed_md_plain(v->ndims, v->dims);
    if (net->adt != dnnl_f32) md = feed_md_retype(&md, net->adt);
    net_set_md(net, L->in[i], &md);
    return md;
}

void net_set_md(feed_net *net, int vid, const dnnl_memory_desc_t *md) {
    feed_value *v = &net->v[vid];
    if (v->md_set) {
        FEED_CHECK(feed_md_equal(&v->md, md), "internal: a layer changed a fixed layout",
                   "value %d layout conflict", vid);
        return;
    }
    v->md = *md;
    v->md_set = 1;
    v->bytes = feed_md_bytes(md);
}

dnnl_primitive_desc_t net_pd(feed_net *net, const void *op_desc, dnnl_primitive_attr_t attr,
                             const_dnnl_primitive_desc_t hint, int allow_fail) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, op_desc, attr ? attr : net->attr, feed_engine(), hint);
    if (st != dnnl_success) {
        if (allow_fail) return NULL;
        CHECK_DNNL(st);
    }
    dnnl_memory_desc_t sp = feed_pd_md(pd, dnnl_query_scratchpad_md, 0);
    size_t b = feed_md_bytes(&sp);
    if (b > net->scratchpad_bytes) net->scratchpad_bytes = b;
    return pd;
}

int feed_pd_is_optimised(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return 0;
    return strncmp(impl, "jit", 3) == 0 || strncmp(impl, "brg", 3) == 0;
}

/* Count the primitives for which oneDNN has no optimised kernel and runs its reference code
 * (correct, but tens of times slower), and remember the first (feed_net_reference_kernels). */
static void count_reference(feed_net *net, const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return;
    if (!strstr(impl, "ref")) return;
    if (net->n_reference++ == 0) {
        dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
        dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind);
        snprintf(net->first_reference, sizeof net->first_reference, "%s (%s)", dnnl_prim_kind2str(kind), impl);
    }
}

int feed_net_reference_kernels(const feed_net *net, const char **first) {
    if (first) *first = net->first_reference;
    return net->n_reference;
}

void op_init(feed_net *net, feed_op *o, dnnl_primitive_desc_t pd) {
    count_reference(net, pd);
    memset(o, 0, sizeof *o);
    o->pd = pd;
    o->p = feed_prim(pd);
}

void op_arg(feed_op *o, int arg, dnnl_memory_t m) {
    for (int i = 0; i < o->nargs; i++)
        if (o->args[i].arg == arg) {
            o->args[i].memory = m;
            return;
        }
    FEED_CHECK(o->nargs < FEED_OP_MAX_ARGS, "internal", "too many primitive arguments");
    o->args[o->nargs].arg = arg;
    o->args[o->nargs].memory = m;
    o->nargs++;
}

void op_bind_scratchpad(feed_net *net, feed_op *o) {
    dnnl_memory_desc_t sp = feed_pd_md(o->pd, dnnl_query_scratchpad_md, 0);
    if (feed_md_bytes(&sp) == 0) return;
    op_arg(o, DNNL_ARG_SCRATCHPAD, net_mem(net, &sp, net->scratchpad));
}

void op_run(feed_op *o) { feed_exec(o->p, o->nargs, o->args); }

void op_free(feed_op *o) {
    if (o->p) dnnl_primitive_destroy(o->p);
    if (o->pd) dnnl_primitive_desc_destroy(o->pd);
    memset(o, 0, sizeof *o);
}

int net_param(feed_net *net, feed_layer *L, const char *suffix, int kind, int dtype,
              const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *user_md, int pt_ndims,
              const int64_t *pt_shape, int init, double init_a) {
    if (net->ne == net->cap_e) {
        net->cap_e = net->cap_e ? 2 * net->cap_e : 64;
        net->e = feed_xrealloc(net->e, sizeof(feed_entry) * (size_t)net->cap_e, "net entries");
    }
    feed_entry *e = &net->e[net->ne];
    memset(e, 0, sizeof *e);
    size_t nl = strlen(L->name) + strlen(suffix) + 2;
    e->name = feed_xmalloc(nl, "param name");
    snprintf(e->name, nl, "%s.%s", L->name, suffix);
    e->info.name = e->name;
    e->info.kind = kind;
    e->info.dtype = dtype;
    e->info.ndims = pt_ndims;
    e->info.numel = 1;
    for (int i = 0; i < pt_ndims; i++) {
        e->info.shape[i] = pt_shape[i];
        e->info.numel *= (size_t)pt_shape[i];
    }
    e->info.decay = kind == FEED_PARAM;
    if (dtype == FEED_F32) {
        e->md = *md;
        e->user_md = *user_md;
        size_t len = md_floats(md);
        size_t padded = (len + 15) / 16 * 16;
        e->info.len = len;
        if (kind == FEED_PARAM) {
            e->info.offset = net->plen;
            net->plen += padded;
        } else {
            e->info.offset = net->blen;
            net->blen += padded;
        }
    }
    e->init = init;
    e->init_a = init_a;
    return net->ne++;
}

int feed_layout4_try(const dnnl_memory_desc_t *md, feed_layout4 *l) {
    if (md->format_kind != dnnl_blocked || md->ndims != 4) return 0;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    if (!(b->inner_nblks == 0 || (b->inner_nblks == 1 && b->inner_idxs[0] == 1))) return 0;
    l->off0 = md->offset0;
    for (int i = 0; i < 4; i++) l->st[i] = b->strides[i];
    l->cblk = b->inner_nblks ? (int)b->inner_blks[0] : 1;
    return 1;
}

void feed_layout4_of(const dnnl_memory_desc_t *md, feed_layout4 *l, const char *what) {
    char buf[64];
    FEED_CHECK(feed_layout4_try(md, l), "internal", "%s: unsupported layout %s", what,
               feed_md_str(md, buf, sizeof buf));
}

dnnl_memory_t net_diff_target(feed_net *net, int vid, int *acc) {
    feed_value *v = &net->v[vid];
    *acc = v->written;
    return v->written ? v->smem : v->dmem;
}

float *net_diff_target_ptr(feed_net *net, int vid, int *acc) {
    feed_value *v = &net->v[vid];
    *acc = v->written;
    return v->written ? net->acc : v->diff;
}

void net_diff_done(feed_net *net, int vid, int acc) {
    feed_value *v = &net->v[vid];
    if (acc) net_vec_add(net, v->diff, net->acc, net_value_elems(net, v));
    v->written = 1;
}

void net_defer(feed_net *net, int vid, const float *src) {
    feed_value *v = &net->v[vid];
    FEED_CHECK(v->ndef < FEED_MAX_DEFER, "internal", "too many deferred gradients on value %d", vid);
    v->def[v->ndef++] = src;
}

/* Complete v's gradient before its producer's backward: tap gradients, deferred identity
 * contributions (unless the producer folds those in itself), zero if nothing arrived. */
static void finalize_diff(feed_net *net, int vid, int producer_fuses) {
    feed_value *v = &net->v[vid];
    size_t n = net_value_elems(net, v);
    for (int k = 0; v->tap >= 0 && k < net->ntaps; k++) {
        feed_tap *t = &net->taps[k];
        if (t->v != vid || !t->pending) continue;
        if (v->written)
            net_vec_add(net, v->diff, t->geng, n);
        else
            net_vec_copy(net, v->diff, t->geng, n);
        v->written = 1;
    }
    if (producer_fuses) return;
    for (int i = 0; i < v->ndef; i++) {
        if (v->written)
            net_vec_add(net, v->diff, v->def[i], n);
        else
            net_vec_copy(net, v->diff, v->def[i], n);
        v->written = 1;
    }
    v->ndef = 0;
    if (!v->written) {
        memset(v->diff, 0, v->bytes); /* +0.0 in fp32 and bf16 alike */
        v->written = 1;
    }
}

/* ------------------------------------------------------------------ parameter init */

static void init_entry(feed_net *net, int idx) {
    feed_entry *e = &net->e[idx];
    if (e->info.dtype == FEED_I64) {
        e->i64 = 0;
        return;
    }
    size_t n = e->info.numel;
    float *plain = feed_xmalloc((n ? n : 1) * sizeof(float), "param init");
    for (size_t i = 0; i < n; i++) {
        uint64_t ctr = ((uint64_t)idx << 40) + i;
        switch (e->init) {
        case FEED_INIT_ZERO: plain[i] = 0.0f; break;
        case FEED_INIT_ONE: plain[i] = 1.0f; break;
        case FEED_INIT_NORMAL:
            plain[i] = (float)(e->init_a * feed_rng_normal(net->opt.seed, FEED_RNG_INIT, ctr));
            break;
        case FEED_INIT_UNIFORM:
            plain[i] = (float)(e->init_a * (2.0 * feed_rng_uniform(net->opt.seed, FEED_RNG_INIT, ctr) - 1.0));
            break;
        }
    }
    memset(e->data, 0, md_floats(&e->md) * sizeof(float));
    feed_reorder_once(&e->user_md, plain, &e->md, e->data);
    free(plain);
}

/* ------------------------------------------------------------------ buffer planning */

typedef struct interval {
    int start, end;
    size_t bytes;
    int vid, is_diff;
} interval;

static int cmp_interval(const void *a, const void *b) {
    const interval *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->is_diff != y->is_diff) return x->is_diff - y->is_diff;
    return x->vid - y->vid;
}

static int diff_root(const feed_net *net, int vid) {
    while (net->v[vid].diff_alias >= 0) vid = net->v[vid].diff_alias;
    return vid;
}

static int data_root(const feed_net *net, int vid) {
    while (net->v[vid].data_alias >= 0) vid = net->v[vid].data_alias;
    return vid;
}

static void plan_buffers(feed_net *net) {
    int nl = net->nl, END = 2 * nl;
    /* forward intervals */
    for (int i = 0; i < net->nv; i++) {
        feed_value *v = &net->v[i];
        v->f_start = v->producer >= 0 ? v->producer : -1;
        v->f_end = v->f_start;
        v->d_start = END + 1;
        v->d_end = -1;
        if (v->producer < 0 || v->tap >= 0 || v->is_output) v->f_end = END;
        if (net->has_bwd && v->producer >= 0 && net->L[v->producer].ops->bwd_needs_out)
            v->f_end = v->f_end > bwd_time(net, v->producer) ? v->f_end : bwd_time(net, v->producer);
    }
    for (int l = 0; l < nl; l++) {
        feed_layer *L = &net->L[l];
        for (int k = 0; k < L->nin; k++) {
            feed_value *v = &net->v[L->in[k]];
            int t = l;
            if (net->has_bwd && L->ops->bwd_needs_in) t = bwd_time(net, l);
            if (t > v->f_end) v->f_end = t;
        }
    }
    /* activations computed in place of another (folded layers) share its buffer */
    for (int i = 0; i < net->nv; i++) {
        feed_value *v = &net->v[i];
        if (v->data_alias < 0) continue;
        feed_value *r = &net->v[data_root(net, i)];
        if (v->f_start < r->f_start) r->f_start = v->f_start;
        if (v->f_end > r->f_end) r->f_end = v->f_end;
    }
    /* gradient intervals (value's own view; aliases merged into the root below) */
    if (net->has_bwd) {
        for (int i = 0; i < net->nv; i++) {
            feed_value *v = &net->v[i];
            if (!v->need_diff) continue;
            v->d_end = v->producer >= 0 ? bwd_time(net, v->producer) : END;
            v->d_start = v->d_end;
            if (v->is_output) v->d_start = nl - 1;
        }
        for (int l = 0; l < nl; l++) {
            feed_layer *L = &net->L[l];
            for (int k = 0; k < L->nin; k++) {
                feed_value *v = &net->v[L->in[k]];
                if (v->need_diff && bwd_time(net, l) < v->d_start) v->d_start = bwd_time(net, l);
                /* a deferred identity gradient is read when the input is finalised */
                if (L->defer_in[k]) {
                    int until = v->producer >= 0 ? bwd_time(net, v->producer) : END;
                    feed_value *r = &net->v[diff_root(net, L->out)];
                    if (until > r->d_end) r->d_end = until;
                }
            }
        }
        for (int i = 0; i < net->nv; i++) {
            feed_value *v = &net->v[i];
            if (!v->need_diff || v->diff_alias < 0) continue;
            feed_value *r = &net->v[diff_root(net, i)];
            if (v->d_start < r->d_start) r->d_start = v->d_start;
            if (v->d_end > r->d_end) r->d_end = v->d_end;
        }
    }
    /* greedy slot assignment */
    interval *iv = feed_xmalloc(sizeof(interval) * (size_t)(2 * net->nv), "intervals");
    int n = 0;
    for (int i = 0; i < net->nv; i++) {
        feed_value *v = &net->v[i];
        if (v->data_alias < 0) iv[n++] = (interval){v->f_start, v->f_end, v->bytes, i, 0};
        if (net->has_bwd && v->need_diff && v->diff_alias < 0)
            iv[n++] = (interval){v->d_start, v->d_end, v->bytes, i, 1};
    }
    qsort(iv, (size_t)n, sizeof *iv, cmp_interval);
    int *slot_free_at = feed_xmalloc(sizeof(int) * (size_t)n, "slots");
    size_t *slot_bytes = feed_xcalloc((size_t)n, sizeof(size_t), "slots");
    int *assign = feed_xmalloc(sizeof(int) * (size_t)n, "slots");
    int ns = 0;
    /* FEED_NN_NO_REUSE=1: every buffer its own memory (debugging aid for the planner) */
    const char *noreuse = getenv("FEED_NN_NO_REUSE");
    int reuse = !(noreuse && noreuse[0] == '1');
    for (int k = 0; k < n; k++) {
        int best = -1;
        for (int s = 0; reuse && s < ns; s++) {
            if (slot_free_at[s] >= iv[k].start) continue;
            if (best < 0) {
                best = s;
                continue;
            }
            /* prefer the smallest slot that fits, else the largest one (grown) */
            int fits = slot_bytes[s] >= iv[k].bytes, bfits = slot_bytes[best] >= iv[k].bytes;
            if (fits && (!bfits || slot_bytes[s] < slot_bytes[best])) best = s;
            if (!fits && !bfits && slot_bytes[s] > slot_bytes[best]) best = s;
        }
        if (best < 0) {
            best = ns++;
            slot_bytes[best] = 0;
        }
        if (iv[k].bytes > slot_bytes[best]) slot_bytes[best] = iv[k].bytes;
        slot_free_at[best] = iv[k].end;
        assign[k] = best;
    }
    net->nslots = ns;
    net->slots = feed_xcalloc((size_t)ns, sizeof(float *), "slots");
    net->slot_bytes = feed_xcalloc((size_t)ns, sizeof(size_t), "slots");
    for (int s = 0; s < ns; s++) {
        net->slot_bytes[s] = slot_bytes[s];
        net->slots[s] = net_alloc(net, slot_bytes[s], "activation buffer");
        net->planned_bytes += slot_bytes[s];
    }
    for (int k = 0; k < n; k++) {
        feed_value *v = &net->v[iv[k].vid];
        if (iv[k].is_diff)
            v->diff = net->slots[assign[k]];
        else
            v->data = net->slots[assign[k]];
    }
    for (int i = 0; i < net->nv; i++) {
        if (net->has_bwd && net->v[i].need_diff && net->v[i].diff_alias >= 0)
            net->v[i].diff = net->v[diff_root(net, i)].diff;
        if (net->v[i].data_alias >= 0) net->v[i].data = net->v[data_root(net, i)].data;
    }
    free(iv);
    free(slot_free_at);
    free(slot_bytes);
    free(assign);
}

/* ------------------------------------------------------------------ build */

feed_net *feed_nb_build(feed_nb *nb, const feed_net_options *opt) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(!net->built, "build a builder once", "net already built");
    FEED_CHECK(net->output >= 0, "call feed_nb_output() before feed_nb_build()", "net has no output");
    net->opt = *opt;
    net->has_bwd = !opt->inference_only;
    if (opt->precision == FEED_PRECISION_BF16 && !feed_engine_bf16_supported()) {
        feed_engine_bf16_fallback_note();
        net->opt.precision = FEED_PRECISION_FP32;
    }
    FEED_CHECK(net->opt.precision == FEED_PRECISION_FP32 || net->opt.precision == FEED_PRECISION_BF16,
               "this is a bug", "precision %d", net->opt.precision);
    net->adt = net->opt.precision == FEED_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
    net->aes = net->adt == dnnl_bf16 ? 2 : 4;
    feed_engine();
    CHECK_DNNL(dnnl_primitive_attr_create(&net->attr));
    CHECK_DNNL(dnnl_primitive_attr_set_scratchpad_mode(net->attr, dnnl_scratchpad_mode_user));

    /* graph facts */
    for (int l = 0; l < net->nl; l++)
        for (int k = 0; k < net->L[l].nin; k++) net->v[net->L[l].in[k]].nconsumers++;
    for (int i = 0; i < net->nv; i++) {
        feed_value *v = &net->v[i];
        v->need_diff = net->has_bwd && (v->producer >= 0 || opt->input_grad);
    }
    net->v[net->output].is_output = 1;
    net->v[net->output].no_alias = 1;
    for (int t = 0; t < net->ntaps; t++) {
        feed_value *v = &net->v[net->taps[t].v];
        if (v->tap < 0) v->tap = t; /* first tap; several names may tap one value */
        v->no_alias = 1;
    }
    net->v[0].no_alias = 1;

    /* 1-2: primitives */
    for (int l = 0; l < net->nl; l++) {
        feed_layer *L = &net->L[l];
        L->ops->plan(net, L);
        FEED_CHECK(net->v[L->out].md_set, "internal", "layer %s did not set its output layout", L->name);
    }
    if (!net->v[0].md_set) {
        dnnl_memory_desc_t md = net_md_tag(net, 4, net->v[0].dims, dnnl_nchw);
        net_set_md(net, 0, &md);
    }
    if (net->has_bwd)
        for (int l = 0; l < net->nl; l++)
            if (net->L[l].ops->plan_bwd) net->L[l].ops->plan_bwd(net, &net->L[l]);
    /* inference-only: fold BN (+ ReLU, + residual add) into the convolutions */
    if (opt->inference_only && !getenv("FEED_NN_NO_FOLD"))
        for (int l = 0; l < net->nl; l++)
            if (net->L[l].ops == &feed_conv_ops) conv_fold_plan(net, &net->L[l]);

    /* 3: parameters */
    net->pbuf = net_alloc(net, net->plen * sizeof(float), "parameters");
    net->gbuf = net_alloc(net, net->plen * sizeof(float), "gradients");
    float *bbuf = net_alloc(net, net->blen * sizeof(float), "buffers");
    for (int i = 0; i < net->ne; i++) {
        feed_entry *e = &net->e[i];
        if (e->info.dtype != FEED_F32) continue;
        if (e->info.kind == FEED_PARAM) {
            e->data = net->pbuf + e->info.offset;
            e->grad = net->gbuf + e->info.offset;
        } else {
            e->data = bbuf + e->info.offset;
        }
        init_entry(net, i);
    }

    /* 4: buffers */
    plan_buffers(net);
    size_t maxb = 64;
    for (int i = 0; i < net->nv; i++) maxb = net->v[i].bytes > maxb ? net->v[i].bytes : maxb;
    net->scratchpad = net_alloc(net, net->scratchpad_bytes, "oneDNN scratchpad");
    if (net->has_bwd) net->acc = net_alloc(net, maxb, "gradient accumulation scratch");
    net->planned_bytes += net->scratchpad_bytes + (net->has_bwd ? maxb : 0);
    for (int i = 0; i < net->nv; i++) {
        feed_value *v = &net->v[i];
        v->mem = net_mem(net, &v->md, v->data);
        if (net->has_bwd && v->need_diff) {
            v->dmem = net_mem(net, &v->md, v->diff);
            v->smem = net_mem(net, &v->md, net->acc);
        }
    }

    /* 5: layers bind */
    for (int l = 0; l < net->nl; l++)
        if (net->L[l].ops->bind) net->L[l].ops->bind(net, &net->L[l]);

    /* edges: input, output, input grad, taps */
    feed_value *in = &net->v[0];
    net->in_plain_md = feed_md_plain(4, in->dims);
    net->in_stage = net_alloc(net, feed_md_bytes(&net->in_plain_md), "input staging");
    feed_reorder_plan(&net->in_re, &net->in_plain_md, net->in_stage, &in->md, in->data);
    feed_value *out = &net->v[net->output];
    net->out_plain_md = feed_md_plain(out->ndims, out->dims);
    if (feed_md_equal(&net->out_plain_md, &out->md)) {
        net->out_plain = out->data;
    } else {
        net->out_plain = net_alloc(net, feed_md_bytes(&net->out_plain_md), "output plain");
        feed_reorder_plan(&net->out_re, &out->md, out->data, &net->out_plain_md, net->out_plain);
    }
    if (net->has_bwd) {
        net->dout_stage = net_alloc(net, feed_md_bytes(&net->out_plain_md), "output grad staging");
        feed_reorder_plan(&net->dout_re, &net->out_plain_md, net->dout_stage, &out->md, out->diff);
        if (opt->input_grad) {
            net->ingrad_plain = net_alloc(net, feed_md_bytes(&net->in_plain_md), "input grad");
            feed_reorder_plan(&net->ingrad_re, &in->md, in->diff, &net->in_plain_md, net->ingrad_plain);
        }
    }
    for (int t = 0; t < net->ntaps; t++) {
        feed_tap *tp = &net->taps[t];
        feed_value *v = &net->v[tp->v];
        dnnl_memory_desc_t pmd = feed_md_plain(v->ndims, v->dims);
        tp->plain = net_alloc(net, feed_md_bytes(&pmd), "tap");
        feed_reorder_plan(&tp->get, &v->md, v->data, &pmd, tp->plain);
        if (net->adt == dnnl_bf16) { /* feed_net_tap_bf16: plain bf16 at an address given per call */
            dnnl_memory_desc_t pmd16 = feed_md_retype(&pmd, dnnl_bf16);
            feed_reorder_plan(&tp->get16, &v->md, v->data, &pmd16, NULL);
        }
        if (net->has_bwd) {
            tp->gplain = net_alloc(net, feed_md_bytes(&pmd), "tap grad");
            tp->geng = net_alloc(net, v->bytes, "tap grad");
            feed_reorder_plan(&tp->put, &pmd, tp->gplain, &v->md, tp->geng);
        }
    }
    if (getenv("FEED_NN_PROFILE") && getenv("FEED_NN_PROFILE")[0] == '1') {
        net->prof_fwd = net_alloc(net, sizeof(double) * (size_t)net->nl, "profile");
        net->prof_bwd = net_alloc(net, sizeof(double) * (size_t)net->nl, "profile");
    }
    net->built = 1;
    net->params_dirty = 1;
    return net;
}

void feed_net_free(feed_net *net) {
    if (!net) return;
    if (net->prof_fwd) print_profile(net);
    for (int l = 0; l < net->nl; l++)
        if (net->L[l].ops->destroy) net->L[l].ops->destroy(&net->L[l]);
    for (int t = 0; t < net->ntaps; t++) {
        feed_reorder_free(&net->taps[t].get);
        feed_reorder_free(&net->taps[t].put);
        feed_reorder_free(&net->taps[t].get16);
    }
    feed_reorder_free(&net->in_re);
    feed_reorder_free(&net->out_re);
    feed_reorder_free(&net->dout_re);
    feed_reorder_free(&net->ingrad_re);
    for (int i = 0; i < net->nmems; i++) dnnl_memory_destroy(net->mems[i]);
    for (int i = 0; i < net->nallocs; i++) free(net->allocs[i]);
    for (int i = 0; i < net->ne; i++) free(net->e[i].name);
    if (net->attr) dnnl_primitive_attr_destroy(net->attr);
    free(net->mems);
    free(net->allocs);
    free(net->casts);
    free(net->e);
    free(net->L);
    free(net->v);
    free(net->taps);
    free(net->slots);
    free(net->slot_bytes);
    free(net);
}

/* ------------------------------------------------------------------ running */

static double prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void print_profile(const feed_net *net) {
    /* per layer type, then the 10 most expensive layers */
    double tot = 0;
    for (int l = 0; l < net->nl; l++) tot += net->prof_fwd[l] + net->prof_bwd[l];
    if (tot <= 0) return;
    fprintf(stderr, "feed_net profile (FEED_NN_PROFILE): %.3f s in layers\n", tot);
    const char *seen[32];
    int ns = 0;
    for (int l = 0; l < net->nl; l++) {
        const char *t = net->L[l].ops->type;
        int dup = 0;
        for (int k = 0; k < ns; k++) dup |= strcmp(seen[k], t) == 0;
        if (dup || ns == 32) continue;
        seen[ns++] = t;
        double f = 0, b = 0;
        for (int m = 0; m < net->nl; m++)
            if (strcmp(net->L[m].ops->type, t) == 0) f += net->prof_fwd[m], b += net->prof_bwd[m];
        fprintf(stderr, "  %-10s fwd %8.3f s  bwd %8.3f s  (%4.1f%%)\n", t, f, b, 100 * (f + b) / tot);
    }
}

void feed_net_forward(feed_net *net, const float *x, int train) {
    FEED_CHECK(net->built, "build the net first", "forward on an unbuilt net");
    FEED_CHECK(!(train && net->opt.inference_only), "build without inference_only to train",
               "train-mode forward on an inference-only net");
    memcpy(net->in_stage, x, feed_md_bytes(&net->in_plain_md));
    feed_reorder_run(&net->in_re);
    if (net->params_dirty) /* bf16 nets: the kernels' weight copies follow the fp32 master */
        for (int i = 0; i < net->ncasts; i++) feed_reorder_run(&net->casts[i]->wcast);
    for (int l = 0; l < net->nl; l++) {
        if (net->L[l].folded) continue;
        double t0 = net->prof_fwd ? prof_now() : 0;
        net->L[l].ops->forward(net, &net->L[l], train);
        if (net->prof_fwd) net->prof_fwd[l] += prof_now() - t0;
    }
    if (net->out_re.prim || net->out_re.copy) feed_reorder_run(&net->out_re);
    net->last_train = train;
    if (train) {
        net->step++;
        net->params_dirty = 1; /* an optimizer step follows */
    } else {
        net->params_dirty = 0; /* folded weights and bf16 copies are current */
    }
}

const float *feed_net_output(feed_net *net) { return net->out_plain; }

int feed_net_output_shape(const feed_net *net, int dims[4]) {
    const feed_value *v = &net->v[net->output];
    for (int i = 0; i < 4; i++) dims[i] = i < v->ndims ? (int)v->dims[i] : 1;
    return v->ndims;
}

void feed_net_backward(feed_net *net, const float *dout) {
    FEED_CHECK(net->has_bwd, "build without inference_only to train", "backward on an inference-only net");
    for (int i = 0; i < net->nv; i++) {
        net->v[i].written = 0;
        net->v[i].ndef = 0;
    }
    for (int t = 0; t < net->ntaps; t++)
        if (net->taps[t].pending) feed_reorder_run(&net->taps[t].put);
    feed_value *out = &net->v[net->output];
    if (dout) {
        memcpy(net->dout_stage, dout, feed_md_bytes(&net->out_plain_md));
        feed_reorder_run(&net->dout_re);
        out->written = 1;
    }
    size_t grads_final = net->plen; /* gradients at and above this offset are final */
    for (int l = net->nl - 1; l >= 0; l--) {
        feed_layer *L = &net->L[l];
        double t0 = net->prof_bwd ? prof_now() : 0;
        finalize_diff(net, L->out, L->ops->fuses_finalize);
        L->ops->backward(net, L);
        if (net->prof_bwd) net->prof_bwd[l] += prof_now() - t0;
        if (net->rep.grads_final_from && net->layer_grad_from[l] < grads_final)
            net->rep.grads_final_from(net->rep.ctx, grads_final = net->layer_grad_from[l]);
    }
    if (net->opt.input_grad) {
        finalize_diff(net, 0, 0);
        feed_reorder_run(&net->ingrad_re);
    }
    for (int t = 0; t < net->ntaps; t++) net->taps[t].pending = 0;
}

const float *feed_net_input_grad(feed_net *net) {
    FEED_CHECK(net->opt.input_grad, "build with options.input_grad = 1", "no input gradient planned");
    return net->ingrad_plain;
}

void feed_net_set_replicas(feed_net *net, const feed_net_replicas *r) {
    FEED_CHECK(!r || r->count >= 1, "this is a bug", "replica count %d", r ? r->count : 0);
    if (!r) {
        memset(&net->rep, 0, sizeof net->rep);
        return;
    }
    FEED_CHECK(!r->sum || net->adt == dnnl_f32, "synchronised BN runs in fp32: turn sync_bn off or train in fp32",
               "synchronised batch norm with a bf16 net");
    net->rep = *r;
    if (!net->layer_grad_from) {
        /* Parameters are registered layer by layer in forward order (net_param), so a layer's
           gradients lie below those of every later layer. */
        net->layer_grad_from = net_alloc(net, sizeof(size_t) * (size_t)(net->nl ? net->nl : 1), "layer offsets");
        for (int l = 0; l < net->nl; l++) {
            size_t lo = SIZE_MAX;
            for (int j = 0; j < 6; j++) {
                int i = net->L[l].param[j];
                if (i >= 0 && net->e[i].info.kind == FEED_PARAM && net->e[i].info.offset < lo)
                    lo = net->e[i].info.offset;
            }
            net->layer_grad_from[l] = lo;
        }
        for (int l = 0, prev = -1; l < net->nl; l++)
            if (net->layer_grad_from[l] != SIZE_MAX) {
                FEED_CHECK(prev < 0 || net->layer_grad_from[l] >= net->layer_grad_from[prev], "this is a bug",
                           "layer %d's gradients lie below those of layer %d", l, prev);
                prev = l;
            }
    }
}

void feed_net_zero_grad(feed_net *net) {
    if (net->gbuf) memset(net->gbuf, 0, net->plen * sizeof(float));
}

void feed_net_set_step(feed_net *net, uint64_t step) { net->step = step; }
uint64_t feed_net_step(const feed_net *net) { return net->step; }
int feed_net_batch(const feed_net *net) { return (int)net->v[0].dims[0]; }
int feed_net_precision(const feed_net *net) { return net->opt.precision; }

int feed_precision_parse(const char *name, int *out) {
    if (name && strcmp(name, "fp32") == 0) return *out = FEED_PRECISION_FP32, 0;
    if (name && strcmp(name, "bf16") == 0) return *out = FEED_PRECISION_BF16, 0;
    return -1;
}

const char *feed_precision_name(int precision) { return precision == FEED_PRECISION_BF16 ? "bf16" : "fp32"; }

/* ------------------------------------------------------------------ taps */

int feed_net_num_taps(const feed_net *net) { return net->ntaps; }
const char *feed_net_tap_name(const feed_net *net, int i) { return net->taps[i].name; }

static feed_tap *find_tap(feed_net *net, const char *name) {
    for (int t = 0; t < net->ntaps; t++)
        if (strcmp(net->taps[t].name, name) == 0) return &net->taps[t];
    return NULL;
}

const float *feed_net_tap(feed_net *net, const char *name, int dims[4]) {
    feed_tap *t = find_tap(net, name);
    if (!t) return NULL;
    feed_reorder_run(&t->get);
    if (dims)
        for (int i = 0; i < 4; i++) dims[i] = i < net->v[t->v].ndims ? (int)net->v[t->v].dims[i] : 1;
    return t->plain;
}

int feed_net_tap_bf16(feed_net *net, const char *name, uint16_t *dst) {
    feed_tap *t = find_tap(net, name);
    if (!t || net->adt != dnnl_bf16) return 0;
    t->get16.dst_ptr = dst; /* the caller's buffer changes from call to call */
    if (t->get16.dst) CHECK_DNNL(dnnl_memory_set_data_handle(t->get16.dst, dst));
    feed_reorder_run(&t->get16);
    return 1;
}

void feed_net_tap_add_grad(feed_net *net, const char *name, const float *g) {
    feed_tap *t = find_tap(net, name);
    FEED_CHECK(t, "use a tap name the model declares (feed_net_tap_name)", "no tap named '%s'", name);
    FEED_CHECK(net->has_bwd, "inference-only nets take no gradients", "tap grad on inference-only net");
    size_t n = feed_md_nelems(&net->v[t->v].md);
    if (t->pending)
        for (size_t i = 0; i < n; i++) t->gplain[i] += g[i];
    else
        memcpy(t->gplain, g, n * sizeof(float));
    t->pending = 1;
}

/* ------------------------------------------------------------------ parameters */

int feed_net_num_entries(const feed_net *net) { return net->ne; }
const feed_param_info *feed_net_entry(const feed_net *net, int i) { return &net->e[i].info; }

int feed_net_find(const feed_net *net, const char *name) {
    for (int i = 0; i < net->ne; i++)
        if (strcmp(net->e[i].name, name) == 0) return i;
    return -1;
}

void feed_net_get(const feed_net *net, int i, void *dst) {
    FEED_CHECK(i >= 0 && i < net->ne, "use feed_net_find", "bad entry index %d", i);
    const feed_entry *e = &net->e[i];
    if (e->info.dtype == FEED_I64) {
        *(int64_t *)dst = e->i64;
        return;
    }
    feed_reorder_once(&e->md, e->data, &e->user_md, dst);
}

void feed_net_set(feed_net *net, int i, const void *src) {
    FEED_CHECK(i >= 0 && i < net->ne, "use feed_net_find", "bad entry index %d", i);
    feed_entry *e = &net->e[i];
    if (e->info.dtype == FEED_I64) {
        e->i64 = *(const int64_t *)src;
        return;
    }
    /* padding elements of blocked layouts must stay zero */
    memset(e->data, 0, md_floats(&e->md) * sizeof(float));
    feed_reorder_once(&e->user_md, src, &e->md, e->data);
    net->params_dirty = 1;
}

void feed_net_get_grad(const feed_net *net, int i, float *dst) {
    FEED_CHECK(i >= 0 && i < net->ne && net->e[i].info.kind == FEED_PARAM && net->e[i].grad,
               "only trainable parameters of a training net have gradients", "entry %d has no gradient", i);
    const feed_entry *e = &net->e[i];
    feed_reorder_once(&e->md, e->grad, &e->user_md, dst);
}

size_t feed_net_num_param_scalars(const feed_net *net) {
    size_t n = 0;
    for (int i = 0; i < net->ne; i++)
        if (net->e[i].info.kind == FEED_PARAM) n += net->e[i].info.numel;
    return n;
}

float *feed_net_params(feed_net *net, size_t *n) {
    if (n) *n = net->plen;
    net->params_dirty = 1;
    return net->pbuf;
}

float *feed_net_grads(feed_net *net, size_t *n) {
    if (n) *n = net->plen;
    return net->gbuf;
}

void feed_net_params_changed(feed_net *net) { net->params_dirty = 1; }

size_t feed_net_planned_bytes(const feed_net *net) { return net->planned_bytes; }

double feed_net_forward_flops(const feed_net *net) {
    double f = 0;
    for (int l = 0; l < net->nl; l++) {
        const feed_layer *L = &net->L[l];
        const feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
        if (L->ops == &feed_conv_ops)
            f += 2.0 * (double)out->dims[0] * out->dims[1] * out->dims[2] * out->dims[3] *
                 (double)(in->dims[1] / L->groups) * L->k * L->k;
        else if (L->ops == &feed_deconv_ops)
            f += 2.0 * (double)in->dims[0] * in->dims[1] * in->dims[2] * in->dims[3] *
                 (double)(out->dims[1] / L->groups) * L->k * L->k;
        else if (L->ops == &feed_linear_ops)
            f += 2.0 * (double)out->dims[0] * out->dims[1] * (double)feed_md_nelems(&in->md) / in->dims[0];
    }
    return f;
}

void feed_net_print(const feed_net *net, void *file) {
    FILE *f = file ? (FILE *)file : stderr;
    char buf[64];
    for (int l = 0; l < net->nl; l++) {
        const feed_layer *L = &net->L[l];
        const feed_value *v = &net->v[L->out];
        fprintf(f, "%3d %-10s %-24s%s in=%d", l, L->ops->type, L->name, L->folded ? " (folded)" : "", L->in[0]);
        if (L->nin > 1) fprintf(f, ",%d", L->in[1]);
        fprintf(f, " out=%d (%lldx%lldx%lldx%lld) %s\n", L->out, (long long)v->dims[0],
                (long long)v->dims[1], v->ndims > 2 ? (long long)v->dims[2] : 1LL,
                v->ndims > 3 ? (long long)v->dims[3] : 1LL, feed_md_str(&v->md, buf, sizeof buf));
    }
    fprintf(f, "slots %d, planned %.1f MB, params %zu\n", net->nslots, net->planned_bytes / 1e6,
            feed_net_num_param_scalars(net));
}

/* Debugging aid (declared in nn_internal.h): copy the output value of layer `name` (diff=0)
 * or its gradient from the last backward (diff=1) into plain NCHW. Returns elements copied. */
size_t feed_net_debug_value(feed_net *net, const char *name, int diff, float *plain) {
    for (int l = 0; l < net->nl; l++) {
        if (strcmp(net->L[l].name, name) != 0) continue;
        feed_value *v = &net->v[net->L[l].out];
        dnnl_memory_desc_t pmd = feed_md_plain(v->ndims, v->dims);
        feed_reorder_once(&v->md, diff ? v->diff : v->data, &pmd, plain);
        return feed_md_nelems(&pmd);
    }
    return 0;
}
