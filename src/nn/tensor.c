/* tensor.c - memory-descriptor helpers, reorders and elementwise loops (include/feed/tensor.h). */
#include "feed/tensor.h"

#include <stdio.h>
#include <string.h>

#include "feed/check.h"
#include "feed/engine.h"

dnnl_memory_desc_t feed_md_tag(int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md;
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    return md;
}

dnnl_memory_desc_t feed_md_any(int ndims, const dnnl_dim_t *dims) {
    return feed_md_tag(ndims, dims, dnnl_format_tag_any);
}

dnnl_memory_desc_t feed_md_plain(int ndims, const dnnl_dim_t *dims) {
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd, dnnl_abcde};
    FEED_CHECK(ndims >= 1 && ndims <= 5, "internal", "plain md with %d dims", ndims);
    return feed_md_tag(ndims, dims, tags[ndims]);
}

dnnl_memory_desc_t feed_md_strides(int ndims, const dnnl_dim_t *dims, const dnnl_dim_t *strides) {
    dnnl_memory_desc_t md;
    CHECK_DNNL(dnnl_memory_desc_init_by_strides(&md, ndims, dims, dnnl_f32, strides));
    return md;
}

dnnl_memory_desc_t feed_md_retype(const dnnl_memory_desc_t *md, dnnl_data_type_t dt) {
    FEED_CHECK(md->format_kind == dnnl_blocked || md->format_kind == dnnl_format_kind_any, "internal",
               "retype of a descriptor of format kind %d", (int)md->format_kind);
    dnnl_memory_desc_t r = *md;
    r.data_type = dt;
    return r;
}

size_t feed_md_bytes(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

int feed_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
    return dnnl_memory_desc_equal(a, b);
}

size_t feed_md_nelems(const dnnl_memory_desc_t *md) {
    size_t n = 1;
    for (int i = 0; i < md->ndims; i++) n *= (size_t)md->dims[i];
    return n;
}

const char *feed_md_str(const dnnl_memory_desc_t *md, char *buf, size_t cap) {
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, cap, "kind%d", (int)md->format_kind);
        return buf;
    }
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    /* order of outer dims by decreasing stride, then the inner blocks */
    int order[DNNL_MAX_NDIMS], nd = md->ndims;
    for (int i = 0; i < nd; i++) order[i] = i;
    for (int i = 0; i < nd; i++)
        for (int j = i + 1; j < nd; j++)
            if (b->strides[order[j]] > b->strides[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    size_t n = 0;
    for (int i = 0; i < nd && n + 2 < cap; i++) {
        int d = order[i];
        int blocked = 0;
        for (int k = 0; k < b->inner_nblks; k++) blocked |= b->inner_idxs[k] == d;
        buf[n++] = (char)((blocked ? 'A' : 'a') + d);
    }
    for (int k = 0; k < b->inner_nblks && n + 8 < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%d%c", (int)b->inner_blks[k],
                              (char)('a' + b->inner_idxs[k]));
    buf[n < cap ? n : cap - 1] = 0;
    return buf;
}

dnnl_memory_t feed_mem(const dnnl_memory_desc_t *md, void *data) {
    dnnl_memory_t m;
    CHECK_DNNL(dnnl_memory_create(&m, md, feed_engine(), data ? data : DNNL_MEMORY_NONE));
    return m;
}

void feed_exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    CHECK_DNNL(dnnl_primitive_execute(p, feed_stream(), nargs, args));
    CHECK_DNNL(dnnl_stream_wait(feed_stream()));
}

dnnl_primitive_t feed_prim(const_dnnl_primitive_desc_t pd) {
    dnnl_primitive_t p;
    CHECK_DNNL(dnnl_primitive_create(&p, pd));
    return p;
}

dnnl_memory_desc_t feed_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, index);
    dnnl_memory_desc_t r;
    if (md)
        r = *md;
    else
        memset(&r, 0, sizeof r);
    return r;
}

void feed_reorder_plan(feed_reorder *r, const dnnl_memory_desc_t *src_md, const void *src,
                       const dnnl_memory_desc_t *dst_md, void *dst) {
    memset(r, 0, sizeof *r);
    r->src_ptr = src;
    r->dst_ptr = dst;
    r->bytes = feed_md_bytes(src_md);
    if (feed_md_equal(src_md, dst_md)) {
        r->copy = 1;
        return;
    }
    dnnl_primitive_desc_t pd;
    CHECK_DNNL(dnnl_reorder_primitive_desc_create(&pd, src_md, feed_engine(), dst_md, feed_engine(), NULL));
    r->prim = feed_prim(pd);
    dnnl_primitive_desc_destroy(pd);
    r->src = feed_mem(src_md, (void *)src);
    r->dst = feed_mem(dst_md, dst);
}

void feed_reorder_run(feed_reorder *r) {
    if (r->copy) {
        if (r->dst_ptr != r->src_ptr) memcpy(r->dst_ptr, r->src_ptr, r->bytes);
        return;
    }
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, r->src}, {DNNL_ARG_TO, r->dst}};
    feed_exec(r->prim, 2, a);
}

void feed_reorder_free(feed_reorder *r) {
    if (r->prim) dnnl_primitive_destroy(r->prim);
    if (r->src) dnnl_memory_destroy(r->src);
    if (r->dst) dnnl_memory_destroy(r->dst);
    memset(r, 0, sizeof *r);
}

void feed_reorder_once(const dnnl_memory_desc_t *src_md, const void *src,
                       const dnnl_memory_desc_t *dst_md, void *dst) {
    feed_reorder r;
    feed_reorder_plan(&r, src_md, src, dst_md, dst);
    feed_reorder_run(&r);
    feed_reorder_free(&r);
}

void feed_vec_add(float *dst, const float *src, size_t n) {
    long long N = (long long)n;
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < N; i++) dst[i] += src[i];
}
