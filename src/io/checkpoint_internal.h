/* checkpoint_internal.h - shared by src/io/checkpoint_*.c (not a public API). */
#ifndef FEED_IO_CHECKPOINT_INTERNAL_H
#define FEED_IO_CHECKPOINT_INTERNAL_H

#include "feed/checkpoint.h"

#include <hdf5.h>
#include <stdint.h>

/* An open checkpoint (checkpoint_read.c opens it, checkpoint_list.c walks it). */
struct feed_ckpt {
    char *path;
    hid_t file;          /* read-only */
    feed_ckpt_meta meta; /* strings owned (malloc'ed) */
    int64_t format_version;
    char *created_by;
};

/* feed_ckpt_list without ending the job: returns 0, or -1 with err filled. */
int feed_ckpt_try_list(const feed_ckpt *c, const char *group, feed_ckpt_entry **out, size_t *n,
                       feed_ckpt_error *err);

/* Root attributes the format defines; extra attributes may not use these names. */
extern const char *const feed_ckpt_reserved_attrs[];
/* Name of the per-dataset checksum attribute. */
#define FEED_CKPT_CRC_ATTR "crc32"
#define FEED_CKPT_COMPLETE_ATTR "complete"

/* "model" + "layer1.0.conv1.weight" -> "model/layer1/0/conv1/weight" (malloc'ed).
 * Returns NULL (and sets *why) for an empty path or an empty component ("a..b", "a//b"). */
char *feed_ckpt_object_path(const char *group, const char *key, const char **why);

/* CRC-32 (zlib, IEEE polynomial) of n bytes; the stored checksum of a tensor is this over its
 * values as little-endian C-order bytes, i.e. over the buffer on this little-endian host. */
uint32_t feed_ckpt_crc32(const void *data, size_t n);

/* Is the shape well formed (known dtype, 0 <= rank <= max, dims >= 0)? */
bool feed_ckpt_shape_valid(const feed_ckpt_shape *shape);
bool feed_ckpt_shape_equal(const feed_ckpt_shape *a, const feed_ckpt_shape *b);
/* "[10, 64] float32" into buf; returns buf. */
const char *feed_ckpt_shape_dtype_str(const feed_ckpt_shape *shape, char *buf, size_t cap);

/* printf into err->message / err->hint (err may be NULL). Returns -1 for `return set(...)`. */
int feed_ckpt_set_error(feed_ckpt_error *err, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
