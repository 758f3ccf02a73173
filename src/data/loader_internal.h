/* loader_internal.h - the loader's parts shared between src/data/loader*.c and
 * sample_*.c (not public API; see include/feed/loader.h for the contract). */
#ifndef FEED_LOADER_INTERNAL_H
#define FEED_LOADER_INTERNAL_H

#include <stdint.h>

#include "feed/loader.h"

/* The epoch permutation last computed by one thread (each thread owns one). */
typedef struct feed_order_cache {
    int64_t epoch;  /* -1: empty */
    int64_t n;      /* entries in perm */
    uint32_t *perm; /* n positions into the loader's selected[] */
} feed_order_cache;

typedef struct feed_prefetch feed_prefetch;

struct feed_loader {
    const feed_dataset *ds;
    feed_loader_config cfg;
    int64_t *selected;      /* n_selected file indices (subset), in file order */
    int64_t n_selected;
    int64_t shard_samples;  /* samples of this shard per epoch */
    int64_t steps;          /* batches per epoch */
    int64_t sample_floats;  /* C * H * W */
    float *lut;             /* C x 256: pixel value -> output float */
    feed_order_cache caller_cache; /* used by the calling thread */
    feed_prefetch *prefetch;       /* NULL when prefetch_depth == 0 */
};

/* sample_select.c: the subset of the split in file order (n_out entries, malloc'ed). */
int64_t *feed_select_samples(const feed_dataset *ds, const feed_loader_config *cfg, int64_t *n_out);

/* sample_order.c: file indices of the samples at positions [offset, offset + max) of batch
 * (epoch, step) into idx; returns how many there are (0 past the end of the batch). */
int feed_batch_indices(const feed_loader *ld, feed_order_cache *cache, int64_t epoch, int64_t step,
                       int64_t offset, int64_t max, int64_t *idx);
void feed_order_cache_free(feed_order_cache *cache);

/* loader.c: build batch (epoch, step) with the given cache (any thread). */
int feed_loader_assemble(const feed_loader *ld, feed_order_cache *cache, int64_t epoch,
                         int64_t step, float *out_nchw, int32_t *labels);

/* loader_prefetch.c */
feed_prefetch *feed_prefetch_start(const feed_loader *ld, int depth, int threads);
/* Serve (epoch, step) from the prefetched batches: returns the sample count, or -1 when it
 * was not prefetched (the caller then computes it; the threads continue after it). */
int feed_prefetch_take(feed_prefetch *pf, int64_t epoch, int64_t step, float *out_nchw,
                       int32_t *labels);
void feed_prefetch_stop(feed_prefetch *pf);

#endif
