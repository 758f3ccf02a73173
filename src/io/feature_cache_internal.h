/* feature_cache_internal.h - shared by src/io/feature_cache*.c (not a public API). */
#ifndef FEED_IO_FEATURE_CACHE_INTERNAL_H
#define FEED_IO_FEATURE_CACHE_INTERNAL_H

#include <hdf5.h>

#include "feed/feature_cache.h"

/* One output of a teacher payload (teacher_outputs.h) as a cache dataset. */
typedef struct {
    int kind;            /* FEED_OUT_* */
    char name[32];       /* "final", "attention/layer2", "logits", "factor" */
    int rank;            /* of one row: 1 or 3 */
    hsize_t dims[3];     /* one row's shape */
    size_t elems;        /* floats per row */
    size_t offset;       /* first float of the block in a payload of batch B, divided by B */
} cache_block;

#define CACHE_MAX_BLOCKS (3 + FEED_MAX_STAGES)

/* The blocks a layout's payload holds, in payload order; returns their count. */
int cache_blocks_of(const feed_teacher_layout *l, cache_block *b);

/* Where the rows of an uncompressed (V, N, row...) dataset lie in the file: chunk j of view v
 * holds rows j*rows_per_chunk ..; a row is read with one pread (no HDF5 call per row). */
typedef struct {
    int64_t rows_per_chunk, chunks_per_view;
    size_t row_bytes;
    haddr_t *addr; /* [V * chunks_per_view] */
} row_map;

struct feed_cache {
    char *path;              /* final name */
    char *partial;           /* path.partial (writing) */
    hid_t file;
    feed_cache_spec spec;    /* as stored */
    int n_blocks;
    cache_block block[CACHE_MAX_BLOCKS];
    hid_t dset[CACHE_MAX_BLOCKS], augment, file_type, mem_type;
    int64_t *samples;        /* [N] */
    /* reading: the blocks of the payload the student expects, mapped onto stored ones */
    int n_want;
    cache_block want[CACHE_MAX_BLOCKS];
    int want_from[CACHE_MAX_BLOCKS]; /* index into block[] */
    int want_batch;
    void *rows_buf;          /* a minibatch of rows of the largest block, stored dtype */
    int32_t *aug_buf;        /* (B, 3) */
    int *order;              /* (B) minibatch slots in increasing row order */
    int fd;                  /* the file's descriptor for direct row reads, -1: read through HDF5 */
    row_map map[CACHE_MAX_BLOCKS], aug_map;
    void *wire;              /* writing: n rows of the largest block, stored dtype */
    size_t wire_cap;
    char error[1200];        /* the last failed write (feed_cache_error) */
    int64_t chunk_rows[CACHE_MAX_BLOCKS], aug_chunk_rows; /* writing: rows per chunk, 0: no direct writes */
    void *pad;               /* writing: one zero-padded last chunk */
    size_t pad_cap;
};

/* The HDF5 file and memory types of a stored dtype (fp16: IEEE half as h5py's float16,
 * read raw; bf16: uint16). The caller closes file_type when it is not predefined. */
void cache_types(int dtype, hid_t *file_type, hid_t *mem_type);
/* Reads the spec stored in a cache's root attributes; returns 0, or -1 with what is missing
 * in why. */
int cache_read_spec(hid_t file, feed_cache_spec *spec, char *why, size_t cap);
/* The first difference between a stored spec and the expected one, as a message and a hint;
 * returns 0 when they agree. */
int cache_spec_mismatch(const feed_cache_spec *have, const feed_cache_spec *want, char *what, size_t cap,
                        const char **hint);

#endif
