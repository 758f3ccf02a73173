/* tensor.h - memory-descriptor and buffer helpers around oneDNN memory.
 *
 * The engine keeps activations in whatever layout oneDNN picks (format `any`, typically
 * nChw16c on AVX-512); the helpers here build plain descriptors for the edges (user input,
 * taps, parameter get/set) and run one-off reorders between layouts.
 */
#ifndef FEED_TENSOR_H
#define FEED_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <oneapi/dnnl/dnnl.h>

/* f32 descriptors. dims has ndims entries. */
dnnl_memory_desc_t feed_md_tag(int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag);
dnnl_memory_desc_t feed_md_any(int ndims, const dnnl_dim_t *dims);
/* Plain C order (nchw / oihw / nc / x) for ndims 1..5. */
dnnl_memory_desc_t feed_md_plain(int ndims, const dnnl_dim_t *dims);
/* Explicit strides (element units). */
dnnl_memory_desc_t feed_md_strides(int ndims, const dnnl_dim_t *dims, const dnnl_dim_t *strides);
/* The same layout (dims, padding, blocking) with another data type, e.g. the fp32 master copy
 * of a bf16 weight layout: a reorder between the two converts element by element. */
dnnl_memory_desc_t feed_md_retype(const dnnl_memory_desc_t *md, dnnl_data_type_t dt);
size_t feed_md_bytes(const dnnl_memory_desc_t *md);
int feed_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);
/* Number of logical elements (product of dims). */
size_t feed_md_nelems(const dnnl_memory_desc_t *md);
/* Short text for a layout, e.g. "nChw16c" or "blocked" (for logs and docs). */
const char *feed_md_str(const dnnl_memory_desc_t *md, char *buf, size_t cap);

/* Memory object over caller-owned data (data may be NULL: set later). */
dnnl_memory_t feed_mem(const dnnl_memory_desc_t *md, void *data);

/* One-off reorder (creates the primitive each call: for edges outside the step loop). */
void feed_reorder_once(const dnnl_memory_desc_t *src_md, const void *src,
                       const dnnl_memory_desc_t *dst_md, void *dst);

/* A planned reorder between two fixed buffers (created once, run many times). */
typedef struct feed_reorder {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
    int copy; /* same layout: plain memcpy of `bytes` */
    size_t bytes;
    const void *src_ptr;
    void *dst_ptr;
} feed_reorder;
void feed_reorder_plan(feed_reorder *r, const dnnl_memory_desc_t *src_md, const void *src,
                       const dnnl_memory_desc_t *dst_md, void *dst);
void feed_reorder_run(feed_reorder *r);
void feed_reorder_free(feed_reorder *r);

/* Execute a primitive on the feed stream and wait (checked). */
void feed_exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args);
/* Create a primitive from a primitive descriptor (checked). */
dnnl_primitive_t feed_prim(const_dnnl_primitive_desc_t pd);
/* Query a memory descriptor of a primitive descriptor (e.g. dnnl_query_dst_md, index 0). */
dnnl_memory_desc_t feed_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index);

/* Elementwise helper over n floats (OpenMP, deterministic). */
void feed_vec_add(float *dst, const float *src, size_t n);           /* dst += src */

#endif
