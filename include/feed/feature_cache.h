/* feature_cache.h - one teacher's outputs for V augmented views of every training sample, in
 * HDF5: written once by run.mode = cache, read by students with distill.source = cache, so
 * later student runs need no teacher ranks (docs/cache.md).
 *
 * File cache.dir/teacher_<n>.h5 (written as teacher_<n>.h5.partial and renamed when complete,
 * so a file under the final name is always whole):
 *   /samples              (N) int64              file indices of the cached training samples
 *                                                (data.subset_* applied), increasing: row r is
 *                                                sample samples[r]
 *   /augment              (V, N, 3) int32        crop offset dy, dx in the padded image and flip
 *                                                (0/1) of view v of row r: the loader's
 *                                                augmentation of epoch v (seed = attribute seed)
 *   /final                (V, N, C, H, W)        the teacher's final map        (pFEED, L1)
 *   /attention/layer<s>   (V, N, H_s * W_s)      AT's normalised maps per stage (AT)
 *   /logits               (V, N, K)                                             (KD)
 *   /factor               (V, N, kC, H, W)       FT's paraphraser factor        (FT)
 *     (only the outputs the job's terms need), float32, float16 (IEEE half: h5py's float16) or
 *     bfloat16 (uint16 holding the upper half of a float32; attribute dtype says which),
 *     rounded exactly as transport.dtype rounds on the wire; one chunk per (view, sample) row,
 *     HDF5 shuffle + deflate when cache.compress.
 * Root attributes: format = "feed_mpi feature cache", format_version, complete (1 once whole),
 *   rows_done (view-major rows written: the resume point of an interrupted cache job),
 *   teacher (path), teacher_sha256 (of the checkpoint file), dataset (path), dataset_sha256
 *   (of the training images and labels), views, seed, dtype, pad, pad_mode, crop, flip,
 *   subset_per_class, subset_fraction, num_samples, outputs (FEED_OUT_* mask), layout, compress.
 *
 * A student opens the caches of its teachers with the spec its own configuration implies;
 * every field that differs is refused (exit 2) naming the field, both values and a hint.
 */
#ifndef FEED_FEATURE_CACHE_H
#define FEED_FEATURE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "feed/config.h"
#include "feed/dataset.h"
#include "feed/teacher_outputs.h"

#define FEED_CACHE_FORMAT "feed_mpi feature cache"
#define FEED_CACHE_FORMAT_VERSION 1

/* What a cache was made from and holds: two caches are interchangeable iff their specs agree. */
typedef struct feed_cache_spec {
    char teacher[4096];           /* checkpoint path (informative) */
    char teacher_sha256[65];
    char dataset[4096];           /* data set path (informative) */
    char dataset_sha256[65];
    int views, seed, dtype;       /* dtype: feed_wire_dtype */
    int pad, pad_mode, crop, flip;
    int64_t subset_per_class;
    double subset_fraction;
    feed_teacher_layout layout;   /* outputs and shapes; layout.batch is not part of the match */
    int64_t n_samples;            /* N */
    int compress;                 /* shuffle + deflate (informative: not part of the match) */
    int teacher_precision;        /* FEED_PRECISION_* the teacher computed in (informative) */
} feed_cache_spec;

/* The spec of teacher n's cache for this configuration: checksums of the teacher file and of
 * ds's training split, cfg's [cache] and [data] augmentation, the teacher's layout. */
feed_cache_spec feed_cache_spec_of(const feed_config *cfg, int n, const feed_dataset *ds,
                                   const feed_teacher_layout *layout, int64_t n_samples);
/* SHA-256 of a data set's training images, labels, mean and std (64 hex digits + NUL). */
void feed_cache_dataset_sha256(const feed_dataset *ds, char out[65]);
/* cache.dir/teacher_<n>.h5 (malloc'ed). */
char *feed_cache_path(const feed_config *cfg, int n);
/* The augmentation seed of the views: cache.seed, or run.seed when it is 0. */
uint64_t feed_cache_seed(const feed_config *cfg);
/* Bytes of one cache file: V x N rows of every output, plus the augmentation table. */
uint64_t feed_cache_bytes(const feed_cache_spec *spec);

typedef struct feed_cache feed_cache;

/* ---- writing (run.mode = cache) ---- */

/* Creates path.partial for spec and samples[N] (or reopens it when an interrupted job left one
 * with the same spec: *rows_done is then its resume point, else 0). */
feed_cache *feed_cache_create(const char *path, const feed_cache_spec *spec, const int64_t *samples, int64_t *rows_done);
/* Rows row0 .. row0+n-1 of view v: `payload` is a teacher payload of a batch of layout.batch
 * (teacher_outputs.h) whose first n samples are these rows; augment holds n x (dy, dx, flip).
 * Encodes to the cache's dtype into its own buffer and writes. Returns 0, or -1 on an HDF5
 * failure (a full disk) with the message in feed_cache_error: safe on a writer thread, which
 * leaves ending the job to the main thread. */
int feed_cache_write_rows(feed_cache *c, int v, int64_t row0, int n, const float *payload, const int32_t *augment);
/* Records that the first rows_done rows (view-major) are written, and flushes the file;
 * 0 or -1 as feed_cache_write_rows. */
int feed_cache_set_progress(feed_cache *c, int64_t rows_done);
/* The message of the last failed write ("" if none). */
const char *feed_cache_error(const feed_cache *c);
/* Marks the cache complete, closes it and renames path.partial to path (durably); frees c. */
void feed_cache_commit(feed_cache *c);

/* ---- reading (distill.source = cache) ---- */

/* Opens path and checks it against `expect` (every field except informative paths): a missing,
 * incomplete or different cache ends the job (exit 2) naming the field. `role` names the
 * teacher in messages ("teacher 2"). */
feed_cache *feed_cache_open(const char *path, const feed_cache_spec *expect, const char *role);
/* Whether path is a complete cache of `expect` (without ending the job); why says what not. */
bool feed_cache_is(const char *path, const feed_cache_spec *expect, char *why, size_t cap);
/* The cached samples (file indices, increasing) and their count. */
const int64_t *feed_cache_samples(const feed_cache *c, int64_t *n);
/* Rows rows[0..n-1] (distinct, n <= the job's batch B) of view v into sample slots 0..n-1 of
 * a batch payload laid out as the job's layout: every output it needs, decoded to fp32; the
 * stored augmentation of slot j into aug[3j..3j+2]. One HDF5 read per output. */
void feed_cache_read_rows(feed_cache *c, int v, const int64_t *rows, int n, float *payload, int32_t *aug);
void feed_cache_close(feed_cache *c);

#endif
