/* loader.h - deterministic minibatches from a feed_dataset: epoch permutation, augmentation,
 * normalisation to NCHW float32, subset and shard policies, background prefetching.
 *
 * Determinism contract: the content of batch (epoch, step) is a pure function of
 * (data set, config, epoch, step). Every rank of a job computes any batch on its own, in any
 * order, and a resumed run needs only (epoch, step). Prefetching never changes a result.
 *
 *   selected  = all samples of the split, or a subset (first K per class, or a per-class
 *               fraction chosen with FEED_RNG_SUBSET from the seed), in file order
 *   order     = shuffle ? Fisher-Yates permutation of `selected` drawn with
 *               feed_rng_below(seed, FEED_RNG_PERMUTATION, (epoch << 32) | i, i + 1)
 *                         for i = n-1 .. 1 (swap i and the draw)
 *                       : selected
 *   shard r of R takes order[r], order[r + R], order[r + 2R], ... (training: the first
 *               floor(n / R) of them, so every shard runs the same number of steps)
 *   batch s   = shard positions [s*B, (s+1)*B); the last partial batch is dropped when
 *               drop_last, kept (smaller) otherwise
 *   sample i  = image i of the file, augmented with feed_augment_draw(seed, epoch, i, ...)
 *               so its crop and flip do not depend on subset, shard or batch size
 *               (augment_views V > 0: feed_augment_draw(augment_seed, epoch mod V, i, ...)).
 */
#ifndef FEED_LOADER_H
#define FEED_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "feed/dataset.h"

/* Largest image side the augmentation handles. */
#define FEED_AUGMENT_MAX_SIDE 4096

typedef enum feed_pad_mode {
    FEED_PAD_ZERO = 0,    /* padded pixels are 0 (before normalisation), as torchvision */
    FEED_PAD_REFLECT = 1, /* mirror without repeating the edge: index -1 -> 1, W -> W-2 */
} feed_pad_mode;

typedef struct feed_loader_config {
    feed_split split;        /* which arrays to read */
    int batch_size;          /* B >= 1 */
    uint64_t seed;           /* permutation, augmentation and fraction subset */
    bool shuffle;            /* new permutation every epoch; off: file order */
    bool drop_last;          /* drop the last partial batch; off: keep it (smaller) */
    /* augmentation: pad, crop H x W, flip (in that order, then normalise) */
    int pad;                 /* pixels added on every side (0: none) */
    feed_pad_mode pad_mode;
    bool random_crop;        /* crop at a random offset of the padded image; off: centre */
    bool hflip;              /* horizontal flip with probability 1/2 */
    bool normalize;          /* (x/255 - mean[c]) / std[c] with the file's mean/std; off: x/255 */
    /* augmentation replayed from a feature cache (feature_cache.h): with augment_views V > 0
       epoch e is augmented as epoch e mod V of augment_seed (the cache's views); 0: as epoch e
       of seed. Order and subset always follow seed and epoch. */
    int augment_views;
    uint64_t augment_seed;
    /* subset (at most one of the two) */
    int64_t subset_per_class; /* > 0: the first K samples of each class in file order */
    double subset_fraction;   /* in (0, 1): round(f * n_c) samples of each class c */
    /* shard */
    int shard_rank;          /* r in [0, R) */
    int shard_count;         /* R >= 1 */
    /* prefetching */
    int prefetch_depth;      /* batches prepared ahead by background threads; 0: synchronous */
    int prefetch_threads;    /* background threads when prefetch_depth > 0 (default 1) */
} feed_loader_config;

/* Training defaults: split train, shuffle, drop_last, pad 4 zero + random crop + hflip,
 * normalise, no subset, shard 0 of 1, prefetch depth 2 with 1 thread. */
feed_loader_config feed_loader_config_train(int batch_size, uint64_t seed);
/* Evaluation defaults: split test, file order, keep last, no augmentation, normalise,
 * no prefetch. */
feed_loader_config feed_loader_config_eval(int batch_size);

typedef struct feed_loader feed_loader;

/* Validates cfg against ds (a bad value ends the program with exit code 2 naming the field),
 * selects the subset and starts the prefetch threads. ds must outlive the loader. */
feed_loader *feed_loader_create(const feed_dataset *ds, const feed_loader_config *cfg);
void feed_loader_destroy(feed_loader *ld); /* stops the threads; NULL is fine */

/* Batches per epoch for this shard (the same for every epoch). */
int64_t feed_loader_steps_per_epoch(const feed_loader *ld);
/* Samples this shard sees per epoch (after subset, shard and drop_last). */
int64_t feed_loader_samples_per_epoch(const feed_loader *ld);
/* Shape of a full batch: dims = {B, C, H, W}. */
void feed_loader_batch_shape(const feed_loader *ld, int dims[4]);

/* Fill batch (epoch, step), 0 <= epoch < 2^31, 0 <= step < steps_per_epoch. Call from one
 * thread at a time; requests in order (step, step+1, ..., then the next epoch) are served by
 * the prefetch threads, any other request is computed on the spot (same result).
 *   out_nchw  B x C x H x W float32 (room for a full batch)
 *   labels    B int32
 * Returns the number of samples written (B, or fewer for the kept last batch). */
int feed_loader_batch(feed_loader *ld, int64_t epoch, int64_t step, float *out_nchw,
                      int32_t *labels);

/* File indices of the samples of batch (epoch, step) into idx (room for B); returns count. */
int feed_loader_batch_indices(feed_loader *ld, int64_t epoch, int64_t step, int64_t *idx);
/* File indices of the selected samples (subset applied), in file order; count in *n. */
const int64_t *feed_loader_selected(const feed_loader *ld, int64_t *n);

/* --- building blocks (public so tests and tools can reproduce a batch independently) --- */

/* The crop offset (dy, dx in [0, 2*pad]) and flip of one sample. Drawn from one Philox block
 * feed_philox4x32_10(seed, FEED_RNG_AUGMENT, (epoch << 32) | sample_index):
 *   dy = (w0 * (2*pad+1)) >> 32, dx = (w1 * (2*pad+1)) >> 32, flip = w2 >> 31
 * random_crop off gives dy = dx = pad (the original image); hflip off gives flip = false. */
typedef struct feed_augment_params {
    int dy, dx;
    bool flip;
} feed_augment_params;
feed_augment_params feed_augment_draw(uint64_t seed, int64_t epoch, int64_t sample_index,
                                      int pad, bool random_crop, bool hflip);

/* Per-channel lookup table pixel value -> float: lut[c*256 + v]
 * = normalize ? ((float)v / 255.0f - mean[c]) / std[c] : (float)v / 255.0f. */
void feed_augment_build_lut(const feed_dataset *ds, bool normalize, float *lut /* C x 256 */);

/* The augmentation sample i gets in epoch `epoch` under this loader's configuration. */
feed_augment_params feed_loader_augment_of(const feed_loader *ld, int64_t epoch, int64_t i);

/* One image: src H x W x C uint8 -> dst C x H x W float32 (a slice of the NCHW batch):
 *   dst[c][y][x] = lut[c][ P(y + dy - pad, xs + dx - pad) ],  xs = flip ? W-1-x : x
 * where P reads the source pixel, 0 outside (zero mode) or the mirrored one (reflect). */
void feed_augment_image(const uint8_t *src, int height, int width, int channels,
                        const feed_augment_params *p, int pad, feed_pad_mode mode,
                        const float *lut, float *dst);

#endif
