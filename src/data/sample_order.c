/* sample_order.c - which samples form batch (epoch, step): the epoch permutation (Fisher-Yates
 * with counter-based draws, cached per thread), the shard's stride and the batch window. */
#include <stdlib.h>

#include "feed/check.h"
#include "feed/rng.h"
#include "loader_internal.h"

/* perm = Fisher-Yates shuffle of 0..n-1; draw i is
 * feed_rng_below(seed, FEED_RNG_PERMUTATION, (epoch << 32) | i, i + 1). */
static void compute_permutation(uint64_t seed, int64_t epoch, int64_t n, uint32_t *perm) {
    for (int64_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t j = feed_rng_below(seed, FEED_RNG_PERMUTATION, ((uint64_t)epoch << 32) | (uint64_t)i,
                                    (uint32_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static const uint32_t *epoch_permutation(const feed_loader *ld, feed_order_cache *cache, int64_t epoch) {
    if (!cache->perm || cache->n != ld->n_selected) {
        free(cache->perm);
        cache->n = ld->n_selected;
        cache->perm = feed_xmalloc(sizeof(uint32_t) * (size_t)(cache->n ? cache->n : 1), "epoch permutation");
        cache->epoch = -1;
    }
    if (cache->epoch != epoch) {
        compute_permutation(ld->cfg.seed, epoch, ld->n_selected, cache->perm);
        cache->epoch = epoch;
    }
    return cache->perm;
}

int feed_batch_indices(const feed_loader *ld, feed_order_cache *cache, int64_t epoch, int64_t step,
                       int64_t offset, int64_t max, int64_t *idx) {
    FEED_CHECK(epoch >= 0 && epoch < ((int64_t)1 << 31) && step >= 0 && step < ld->steps,
               "the training loop asked for a batch outside the epoch",
               "batch (epoch %lld, step %lld) out of range: steps per epoch %lld", (long long)epoch,
               (long long)step, (long long)ld->steps);
    const int64_t B = ld->cfg.batch_size, R = ld->cfg.shard_count, r = ld->cfg.shard_rank;
    const int64_t batch_first = step * B;
    const int64_t batch_count = ld->shard_samples - batch_first < B ? ld->shard_samples - batch_first : B;
    int64_t count = batch_count - offset;
    if (count > max) count = max;
    if (count <= 0) return 0;
    const uint32_t *perm = ld->cfg.shuffle ? epoch_permutation(ld, cache, epoch) : NULL;
    for (int64_t j = 0; j < count; j++) {
        int64_t position = (batch_first + offset + j) * R + r; /* in the order of all shards */
        idx[j] = ld->selected[perm ? perm[position] : position];
    }
    return (int)count;
}

void feed_order_cache_free(feed_order_cache *cache) {
    free(cache->perm);
    cache->perm = NULL;
    cache->epoch = -1;
}
