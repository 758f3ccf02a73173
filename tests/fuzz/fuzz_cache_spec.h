/* fuzz_cache_spec.h - the feature cache the cache fuzz target expects, and its seeds
 * (fuzz_make_seeds): one teacher's final map and logits for V views of N samples. */
#ifndef FEED_FUZZ_CACHE_SPEC_H
#define FEED_FUZZ_CACHE_SPEC_H

#include "feed/feature_cache.h"

#define FUZZ_CACHE_BATCH 4 /* the student's batch: rows are read this many at a time */

/* dtype: feed_wire_dtype; compress: shuffle + deflate (rows then go through HDF5) */
feed_cache_spec fuzz_cache_spec(int dtype, int compress);

#endif
