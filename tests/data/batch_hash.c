/* batch_hash.c - see batch_hash.h */
#include "batch_hash.h"

#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/rng.h"

enum { BH_BATCH = 16 }; /* 200 / 16 = 12 steps per epoch */

const int64_t bh_keys[BH_NUM_KEYS][2] = {{0, 0}, {0, 1}, {0, 11}, {1, 0}, {1, 5}, {3, 7}, {250, 2}, {2, 11}};

void bh_write_synthetic(const char *path) {
    feed_dataset *ds = feed_dataset_new("determinism", 10, 16, 16, 3);
    for (int s = 0; s < 2; s++) {
        int64_t n = s == 0 ? 200 : 20;
        feed_dataset_alloc_split(ds, (feed_split)s, n);
        for (int64_t i = 0; i < n * feed_dataset_image_bytes(ds); i++)
            ds->split[s].images[i] = (uint8_t)feed_rng_u32(31, FEED_RNG_TEST, (uint64_t)(s << 20) + (uint64_t)i);
        for (int64_t i = 0; i < n; i++) ds->split[s].labels[i] = (int32_t)((i * 7) % 10);
    }
    feed_dataset_compute_stats(ds);
    feed_dataset_write(ds, path, true, false);
    feed_dataset_close(ds);
}

feed_loader_config bh_config(uint64_t seed, int prefetch_depth, int prefetch_threads) {
    feed_loader_config cfg = feed_loader_config_train(BH_BATCH, seed);
    cfg.pad = 2;
    cfg.prefetch_depth = prefetch_depth;
    cfg.prefetch_threads = prefetch_threads;
    return cfg;
}

void bh_hash_batch(feed_loader *ld, int64_t epoch, int64_t step, char hex[65]) {
    int dims[4];
    feed_loader_batch_shape(ld, dims);
    const size_t floats = (size_t)dims[0] * dims[1] * dims[2] * dims[3];
    const size_t bytes = sizeof(int32_t) * (1 + (size_t)dims[0]) + sizeof(float) * floats;
    uint8_t *buf = feed_xcalloc(1, bytes, "batch bytes");
    int32_t *count = (int32_t *)buf, *labels = count + 1;
    float *images = (float *)(labels + dims[0]);
    *count = feed_loader_batch(ld, epoch, step, images, labels);
    feed_sha256(buf, bytes, hex);
    free(buf);
}
