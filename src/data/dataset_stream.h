/* dataset_stream.h - write a data-set file in slabs of images, so that a converter holds one
 * slab in memory and not the whole set (src/data; not public API).
 *
 *   feed_dataset_stream *s = feed_dataset_stream_open(meta, n, "out.h5", false, true, true);
 *   feed_dataset_stream_write(s, FEED_SPLIT_TRAIN, count, images, labels, paths);  ... both splits, in order
 *   feed_dataset_stream_close(s, NULL, NULL);   mean/std from the training pixels written
 *
 * The file appears atomically at close (written as OUT.tmp, fsync'ed, renamed; an exit
 * handler removes OUT.tmp if the program ends before). Any error ends the program
 * (exit 2 for input errors such as an existing OUT without overwrite, 1 for disk errors). */
#ifndef FEED_DATASET_STREAM_H
#define FEED_DATASET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feed/dataset.h"

typedef struct feed_dataset_stream feed_dataset_stream;

/* Creates OUT.tmp with arrays for up to n[split] images shaped like meta (H x W x C), and meta's
 * name, class names and sources (meta's splits are not read). with_paths adds a string
 * array /<split>/paths: where each image came from. */
feed_dataset_stream *feed_dataset_stream_open(const feed_dataset *meta, const int64_t n[FEED_NUM_SPLITS],
                                              const char *path, bool overwrite, bool with_paths, bool progress);
/* Appends `count` images (count x H x W x C), their labels and (with_paths) their paths to a
 * split. */
void feed_dataset_stream_write(feed_dataset_stream *s, feed_split split, int64_t count, const uint8_t *images,
                               const int32_t *labels, const char *const *paths);
/* A root attribute of n strings (e.g. the files a converter skipped). */
void feed_dataset_stream_put_strings(feed_dataset_stream *s, const char *name, const char *const *values, int64_t n);
/* Requires at least one image per split (a converter that skipped images ends the arrays at
 * the last image written); writes mean/std - the given C values, or with NULL the exact
 * statistics of the training pixels streamed - and publishes the file. Frees s. */
void feed_dataset_stream_close(feed_dataset_stream *s, const float *mean, const float *std);

/* Exact per-channel statistics of uint8 pixels: a histogram per channel, summed in double. */
typedef struct feed_pixel_hist {
    int channels;
    uint64_t count[FEED_MAX_CHANNELS][256];
} feed_pixel_hist;
/* bytes: interleaved pixels (HWC), a multiple of channels. */
void feed_pixel_hist_add(feed_pixel_hist *h, const uint8_t *bytes, size_t n);
/* mean and population std of value/255 per channel (0 and 0 for an empty histogram). */
void feed_pixel_hist_stats(const feed_pixel_hist *h, float *mean, float *std);

#endif
