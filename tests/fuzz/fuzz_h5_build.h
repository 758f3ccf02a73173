/* fuzz_h5_build.h - writing well-formed HDF5 objects whose types, shapes and values the fuzz
 * input chooses (for the structure-aware targets, fuzz_*_gen.c). HDF5 writes the file, so
 * the reader under test sees a valid file and the fuzzer explores our validation, not
 * HDF5's parser. Failures of HDF5 calls here abort: they are bugs in the target. */
#ifndef FEED_FUZZ_H5_BUILD_H
#define FEED_FUZZ_H5_BUILD_H

#include <hdf5.h>

#include "fuzz_common.h"

/* Element types the builders choose among. */
typedef enum {
    FB_U8, FB_I8, FB_U16, FB_I32, FB_U32, FB_I64, FB_U64, FB_F16, FB_F32, FB_F64,
    FB_STR_VLEN, FB_STR_FIXED, FB_NUM_TYPES
} fb_type;

/* A new file-type id for t (fixed strings: `fixed_len` bytes); close with H5Tclose. */
hid_t fb_h5_type(fb_type t, size_t fixed_len);

/* A dataspace: rank 0 is a scalar, rank -1 a null dataspace. */
hid_t fb_space(int rank, const hsize_t *dims);

/* Attribute `name` on obj of type t and shape (rank, dims), values taken from the input
 * (strings: text from the input; numbers: raw bytes, so any bit pattern incl. NaN). */
void fb_attr(fuzz_bytes *in, hid_t obj, const char *name, fb_type t, int rank, const hsize_t *dims);
/* The same with given values: one string, or n numbers converted from doubles. */
void fb_attr_str(hid_t obj, const char *name, const char *value, bool vlen);
void fb_attr_num(hid_t obj, const char *name, fb_type t, int n, const double *values);

/* Dataset `name` (a path below loc; missing groups are created) of type t and shape
 * (rank, dims). Up to 1 MiB of values are written (raw bytes from the input, or `values` -
 * n bytes, repeated - when given); larger shapes are chunked and left unwritten, so the file
 * stays small while its declared size is huge. Returns the open dataset. */
hid_t fb_dataset(fuzz_bytes *in, hid_t loc, const char *name, fb_type t, int rank, const hsize_t *dims,
                 const void *values, size_t n);

/* A shape chosen by the input: mostly around `typical` (rank and dims), sometimes empty,
 * off by one, of another rank or very large. */
int fb_shape(fuzz_bytes *in, int typical_rank, const hsize_t *typical, hsize_t *dims);

#endif
