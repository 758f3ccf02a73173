/* h5_util.h - small HDF5 helpers for src/io (not a public API).
 *
 * The helpers never end the job: they return a negative value on failure (hid_t < 0, or -1)
 * and leave HDF5's error stack in place, so the caller can clean up (remove a .tmp file) and
 * report the failure with h5_error_detail() in its own words.
 */
#ifndef FEED_IO_H5_UTIL_H
#define FEED_IO_H5_UTIL_H

#include "feed/checkpoint.h"

#include <hdf5.h>
#include <stdint.h>

/* While src/io runs, HDF5 prints nothing itself: errors are reported once, by us. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} h5_quiet;
void h5_quiet_begin(h5_quiet *saved);
void h5_quiet_end(const h5_quiet *saved);

/* The most specific message on HDF5's current error stack, e.g. "truncated file: eof = 4096,
 * sblock->base_addr = 0, stored_eof = 9736" ("" if the stack is empty). Static buffer. */
const char *h5_error_detail(void);

/* Closes id with close_fn (H5Dclose, H5Sclose, ...) keeping the error stack of a failure being
 * cleaned up (any HDF5 call would otherwise clear it before h5_error_detail() reads it). */
void h5_close_keep_error(herr_t (*close_fn)(hid_t), hid_t id);

/* HDF5 types for our dtypes: little-endian file types and native memory types (not to be
 * closed). h5_dtype_of maps a dataset's type back (FEED_CKPT_UNSUPPORTED if none fits). */
hid_t h5_file_type(feed_ckpt_dtype dtype);
hid_t h5_mem_type(feed_ckpt_dtype dtype);
feed_ckpt_dtype h5_dtype_of(hid_t type);

/* File access: v1.8 object formats (checksummed metadata, readable by HDF5 >= 1.8 and h5py),
 * strong close degree (closing the file closes everything in it). */
hid_t h5_fapl_create(void);
/* Group / file creation: record link and attribute creation order (listing follows it). */
hid_t h5_gcpl_create(void);
hid_t h5_fcpl_create(void);

/* Opens group `path` below loc ("" = loc itself), creating missing groups on the way. */
hid_t h5_group_ensure(hid_t loc, const char *path);
/* Does `path` below loc exist as an object? Checks every component, so a missing parent is
 * "no", not an error. Returns 1, 0, or -1 on an HDF5 failure. */
int h5_path_exists(hid_t loc, const char *path);

/* Dataset `name` in `loc` with the given shape (rank 0: scalar), contiguous, filled from
 * data (n elements of shape->dtype). Returns the open dataset or < 0. */
hid_t h5_dataset_write(hid_t loc, const char *name, const feed_ckpt_shape *shape, const void *data);
/* Are all of a dataset's values stored in the file? HDF5 returns values never written (a
 * chunk never written, a contiguous dataset never allocated) as fill values, so a file of a
 * few KB could declare terabytes. Compressed chunks count as stored. 1 yes, 0 no, -1 error. */
int h5_dataset_fully_stored(hid_t dataset);
/* Element type and shape of a dataset. */
int h5_dataset_shape(hid_t dataset, feed_ckpt_shape *out);
/* Reads the whole dataset as dtype into dst. */
int h5_dataset_read(hid_t dataset, feed_ckpt_dtype dtype, void *dst);

/* Whether dataset d can really hold `bytes` (the size its shape gives in memory), asked
 * before that size is allocated: 0 if so; otherwise -1 with the reason in why[cap].
 * Uncompressed storage holds every byte; deflate compresses at most 1032:1 (zlib's limit), so
 * a shape claiming more than that is damaged or crafted; an empty storage holds no data; and
 * nothing read whole may need more than this machine's memory. bytes = 0 means the shape's
 * size overflowed 64 bits. */
int h5_bounded_by_storage(hid_t d, unsigned long long bytes, char *why, size_t cap);
/* a * b, or 0 when it overflows (for sizes whose factors are all >= 1). */
unsigned long long h5_mul_size(unsigned long long a, unsigned long long b);

/* Scalar attributes; strings are variable-length UTF-8 (h5py reads them as str).
 * Writing replaces an existing attribute of the same name. */
int h5_attr_write_str(hid_t obj, const char *name, const char *value);
int h5_attr_write_i64(hid_t obj, const char *name, int64_t value);
int h5_attr_write_u32(hid_t obj, const char *name, uint32_t value);
int h5_attr_write_f64(hid_t obj, const char *name, double value);

/* Reading returns 1 if read, 0 if the attribute is absent, -1 if it has another type class
 * or HDF5 failed. Strings may be variable or fixed length; *out is malloc'ed. Integers of
 * any size convert to int64; floats to double. */
int h5_attr_read_str(hid_t obj, const char *name, char **out);
int h5_attr_read_i64(hid_t obj, const char *name, int64_t *out);
int h5_attr_read_f64(hid_t obj, const char *name, double *out);

/* HDF5's metadata checksum (Jenkins lookup3 hashlittle). */
uint32_t h5_checksum_lookup3(const void *data, size_t length, uint32_t initval);
/* Makes the superblock checksum of an image from H5Fget_file_image right again (see
 * h5_image_fixup.c). Returns 0, or -1 if the image does not start with an HDF5 superblock. */
int h5_image_fix_superblock(unsigned char *image, size_t size);

#endif
