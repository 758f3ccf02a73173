/* checkpoint.h - HDF5 checkpoints that h5py and PyTorch can read (layout: docs/checkpoint.md).
 *
 * A checkpoint is a set of named tensors in groups plus root attributes:
 *
 *   /model/<key>            float32, C order, PyTorch shapes; <key> is the state_dict key with
 *                           '.' -> '/' (layer1/0/conv1/weight); num_batches_tracked is int64
 *   /ntl/<n>/<key>          FEED transform layers
 *   /optim/<section>/<key>  momentum buffers under the keys of their parameters
 *   /train/...              RNG and loader state, lr schedule position, small scalars/arrays
 *   any other group         allowed
 *   root attributes         format="feed_mpi", format_version, arch, dataset, num_classes,
 *                           in_channels, epoch, step, seed, config_ini, created_by,
 *                           created_at, extras, and complete=1 (written last)
 *
 * Every dataset carries a `crc32` attribute (zlib CRC-32 of its values as little-endian
 * C-order bytes). Writing is atomic (NAME.tmp, close, fsync, rename, fsync the folder), so a
 * file under its final name is always complete; opening one checks the format, version,
 * `complete` flag and every CRC, so damage after writing is reported before any use.
 *
 * Errors: bad checkpoints end the job with exit code 2 (FEED_INPUT_ERROR) naming the file, the
 * tensor and a hint; write failures end it with exit code 1 after removing NAME.tmp (the
 * previous NAME is untouched). The feed_ckpt_try_* functions return -1 and fill a
 * feed_ckpt_error instead, for callers that want to fall back (see feed_ckpt_find_newest).
 *
 * Keys: `group` is a path such as "model", "ntl/0", "optim/momentum" or "train" (NULL or ""
 * for the root); `key` is a path inside it, with '.' or '/' as separator:
 * ("model", "layer1.0.conv1.weight") and ("model", "layer1/0/conv1/weight") name the same
 * dataset /model/layer1/0/conv1/weight.
 */
#ifndef FEED_CHECKPOINT_H
#define FEED_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FEED_CKPT_FORMAT "feed_mpi"
#define FEED_CKPT_FORMAT_VERSION 1
#define FEED_CKPT_MAX_RANK 8

/* Element types a checkpoint tensor can have (stored little-endian). */
typedef enum {
    FEED_CKPT_UNSUPPORTED = 0, /* only reported by feed_ckpt_list for foreign datasets */
    FEED_CKPT_F32,
    FEED_CKPT_F64,
    FEED_CKPT_I32,
    FEED_CKPT_I64,
    FEED_CKPT_U8,
    FEED_CKPT_U32,
    FEED_CKPT_U64,
} feed_ckpt_dtype;

/* "float32", "int64", ... (numpy names). */
const char *feed_ckpt_dtype_name(feed_ckpt_dtype dtype);
size_t feed_ckpt_dtype_size(feed_ckpt_dtype dtype);

/* Element type and shape of a tensor; rank 0 is a scalar (PyTorch 0-dim tensor).
 * As a literal: (feed_ckpt_shape){FEED_CKPT_F32, 4, {16, 3, 3, 3}} (conv OIHW). */
typedef struct {
    feed_ckpt_dtype dtype;
    int rank;
    int64_t dims[FEED_CKPT_MAX_RANK];
} feed_ckpt_shape;

int64_t feed_ckpt_shape_numel(const feed_ckpt_shape *shape);
/* "[16, 3, 3, 3]" into buf; returns buf. */
const char *feed_ckpt_shape_str(const feed_ckpt_shape *shape, char *buf, size_t cap);

/* What the trainer knows about the run; root attributes of the checkpoint. */
typedef struct {
    const char *arch;       /* "resnet20" */
    const char *dataset;    /* "fashion_mnist" (or the data file's name) */
    int64_t num_classes;
    int64_t in_channels;
    int64_t epoch;          /* completed epochs */
    int64_t step;           /* optimizer steps taken */
    int64_t seed;
    const char *config_ini; /* the INI text verbatim ("" if none) */
} feed_ckpt_meta;

/* A non-fatal error: what went wrong (naming the file and tensor) and what to do. */
typedef struct {
    char message[1536];
    char hint[512];
} feed_ckpt_error;

/* ---------------------------------------------------------------------------------------- */
/* Writing (checkpoint_write.c)                                                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct feed_ckpt_writer feed_ckpt_writer;

/* Starts writing `path` (through path.tmp, which is replaced if a killed writer left one) and
 * writes the root attributes of `meta` plus format, format_version, created_by, created_at. */
feed_ckpt_writer *feed_ckpt_begin(const char *path, const feed_ckpt_meta *meta);

/* Writes one tensor: `data` holds numel(shape) elements of shape.dtype in C order.
 * Writing the same key twice is an error. */
void feed_ckpt_put(feed_ckpt_writer *w, const char *group, const char *key, feed_ckpt_shape shape,
                   const void *data);
void feed_ckpt_put_i64(feed_ckpt_writer *w, const char *group, const char *key, int64_t value);
void feed_ckpt_put_f64(feed_ckpt_writer *w, const char *group, const char *key, double value);

/* Free-form attributes on the root (object NULL or "") or on a group or tensor already
 * written ("train", "model/fc/weight"). Names the format reserves are refused. */
void feed_ckpt_put_attr_str(feed_ckpt_writer *w, const char *object, const char *name,
                            const char *value);
void feed_ckpt_put_attr_i64(feed_ckpt_writer *w, const char *object, const char *name,
                            int64_t value);
void feed_ckpt_put_attr_f64(feed_ckpt_writer *w, const char *object, const char *name,
                            double value);

/* Sets complete=1, closes, fsyncs and renames path.tmp to path, then fsyncs the folder.
 * Frees w. After it returns, path is the new checkpoint even if the machine crashes. */
void feed_ckpt_commit(feed_ckpt_writer *w);
/* Gives up: removes path.tmp, leaves path as it was, frees w. */
void feed_ckpt_abandon(feed_ckpt_writer *w);

/* Path of the temporary file a writer of `path` uses ("<path>.tmp"); caller frees. */
char *feed_ckpt_tmp_path(const char *path);

/* ---------------------------------------------------------------------------------------- */
/* Reading (checkpoint_read.c); a checkpoint is only ever opened read-only.                 */
/* ---------------------------------------------------------------------------------------- */

typedef struct feed_ckpt feed_ckpt;

/* Opens and verifies a checkpoint: HDF5 readable, format "feed_mpi", a format_version this
 * build reads, complete=1, all root attributes present, and every dataset's CRC32 right
 * (this reads every tensor once). Bad files end the job with exit code 2. */
feed_ckpt *feed_ckpt_open(const char *path);
/* The same, returning NULL and filling err instead of ending the job. */
feed_ckpt *feed_ckpt_try_open(const char *path, feed_ckpt_error *err);
void feed_ckpt_close(feed_ckpt *c);

const char *feed_ckpt_path(const feed_ckpt *c);
/* Root attributes; the strings live as long as c. */
const feed_ckpt_meta *feed_ckpt_get_meta(const feed_ckpt *c);
int64_t feed_ckpt_format_version(const feed_ckpt *c);
const char *feed_ckpt_created_by(const feed_ckpt *c);

/* Ends the job (exit 2) unless the checkpoint matches: "checkpoint X has arch resnet56 but the
 * config asks for resnet20". Pass NULL / a negative number to skip a field. */
void feed_ckpt_require_model(const feed_ckpt *c, const char *arch, int64_t num_classes,
                             int64_t in_channels);

bool feed_ckpt_has(const feed_ckpt *c, const char *group, const char *key);
/* Element type and shape of a tensor; ends the job if it is missing. */
feed_ckpt_shape feed_ckpt_shape_of(const feed_ckpt *c, const char *group, const char *key);

/* Reads a tensor into dst (numel(expect) elements) after checking that it exists and has
 * exactly the expected dtype and shape, and that its CRC32 matches. */
void feed_ckpt_read(const feed_ckpt *c, const char *group, const char *key, feed_ckpt_shape expect,
                    void *dst);
int feed_ckpt_try_read(const feed_ckpt *c, const char *group, const char *key,
                       feed_ckpt_shape expect, void *dst, feed_ckpt_error *err);
/* Scalars (rank 0) written by feed_ckpt_put_i64 / _f64. */
int64_t feed_ckpt_read_i64(const feed_ckpt *c, const char *group, const char *key);
double feed_ckpt_read_f64(const feed_ckpt *c, const char *group, const char *key);

/* Extra attributes (object NULL or "" = root). Return false if absent; a wrong type ends the
 * job. The string is malloc'ed (caller frees). */
bool feed_ckpt_attr_i64(const feed_ckpt *c, const char *object, const char *name, int64_t *out);
bool feed_ckpt_attr_f64(const feed_ckpt *c, const char *object, const char *name, double *out);
char *feed_ckpt_attr_str(const feed_ckpt *c, const char *object, const char *name);

/* One tensor found by feed_ckpt_list. */
typedef struct {
    char *path;  /* in the file, no leading '/': "model/layer1/0/conv1/weight" */
    char *key;   /* relative to the listed group, PyTorch style: "layer1.0.conv1.weight" */
    feed_ckpt_shape shape;
} feed_ckpt_entry;

/* Every tensor under `group` (recursively; NULL or "" = whole file), in the order they were
 * written where the file records it, else by name. Returns the count; *out is malloc'ed.
 * A missing group gives 0 entries. */
size_t feed_ckpt_list(const feed_ckpt *c, const char *group, feed_ckpt_entry **out);
void feed_ckpt_entries_free(feed_ckpt_entry *entries, size_t n);

/* ---------------------------------------------------------------------------------------- */
/* Run folders (checkpoint_dir.c)                                                           */
/* ---------------------------------------------------------------------------------------- */
/* Periodic checkpoints of a run are "<dir>/<prefix>_e<epoch>_s<step>.h5" with the epoch
 * zero-padded to 4 and the step to 8 digits ("teacher0_e0012_s00004680.h5"); order is by
 * step, then epoch, never by name or time. "<dir>/<prefix>_best.h5" is the best one so far.
 * Files ending in .tmp are unfinished writes and never listed. */

/* Creates dir and its parents if missing. */
void feed_ckpt_dir_create(const char *dir);
/* "<dir>/<prefix>_e%04d_s%08d.h5" and "<dir>/<prefix>_best.h5"; caller frees. */
char *feed_ckpt_dir_path(const char *dir, const char *prefix, int64_t epoch, int64_t step);
char *feed_ckpt_dir_best_path(const char *dir, const char *prefix);

/* A periodic checkpoint found in a run folder (not verified). */
typedef struct {
    char *path;
    int64_t epoch;
    int64_t step;
} feed_ckpt_dir_entry;

/* Periodic checkpoints of `prefix` in dir, newest first (a missing dir gives 0). */
size_t feed_ckpt_dir_list(const char *dir, const char *prefix, feed_ckpt_dir_entry **out);
void feed_ckpt_dir_entries_free(feed_ckpt_dir_entry *entries, size_t n);

/* Result of looking for the newest checkpoint that verifies. */
typedef struct {
    char *path;             /* newest checkpoint that opened and verified; NULL if none */
    int64_t epoch, step;
    size_t n_skipped;       /* newer files that did not verify, newest first */
    char **skipped_path;
    char **skipped_reason;  /* feed_ckpt_error message, one line */
} feed_ckpt_scan;

/* Verifies the run's checkpoints newest first and stops at the first good one; the bad ones
 * passed over are reported in out (the caller decides: fall back or refuse). */
void feed_ckpt_find_newest(const char *dir, const char *prefix, feed_ckpt_scan *out);
/* "skipped damaged checkpoint X: reason" lines, one per skipped file. */
void feed_ckpt_scan_print(const feed_ckpt_scan *scan, FILE *to);
void feed_ckpt_scan_free(feed_ckpt_scan *scan);

/* Deletes periodic checkpoints beyond the newest keep_last (>= 1), but never the newest one
 * that verifies, even if it is older. Returns the number deleted. */
int feed_ckpt_dir_prune(const char *dir, const char *prefix, int keep_last);

/* Makes <prefix>_best.h5 the same content as src_path, atomically (a hard link if the file
 * system allows, else a copy; both via a .tmp name and rename). */
void feed_ckpt_dir_save_best(const char *dir, const char *prefix, const char *src_path);

/* Removes "<prefix>_*.h5.tmp" files a killed writer left behind; returns how many. Call only
 * when no other process writes checkpoints with this prefix into dir. */
int feed_ckpt_dir_remove_stale_tmp(const char *dir, const char *prefix);

#endif
