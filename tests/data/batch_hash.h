/* batch_hash.h - shared by the determinism tests: a small synthetic data-set file, the batch
 * keys they compare, and a SHA-256 of a batch (images and labels bytes). */
#ifndef FEED_TEST_BATCH_HASH_H
#define FEED_TEST_BATCH_HASH_H

#include <stdint.h>

#include "feed/loader.h"

/* 200 training images 16x16x3, 20 test images, 10 classes; written atomically to path. */
void bh_write_synthetic(const char *path);
/* Training config of the determinism tests: batch 16, pad 2 zero + crop + flip, normalise. */
feed_loader_config bh_config(uint64_t seed, int prefetch_depth, int prefetch_threads);

/* (epoch, step) pairs, including a far epoch and the last step of an epoch. */
#define BH_NUM_KEYS 8
extern const int64_t bh_keys[BH_NUM_KEYS][2];

/* hex = SHA-256 of batch (epoch, step): count, labels, then the float bytes. */
void bh_hash_batch(feed_loader *ld, int64_t epoch, int64_t step, char hex[65]);

#endif
