/* fuzz_cache_spec.c - the cache of fuzz_cache_spec.h: small, every row a chunk of its own. */
#include "fuzz_cache_spec.h"

#include <string.h>

feed_cache_spec fuzz_cache_spec(int dtype, int compress) {
    feed_cache_spec s;
    memset(&s, 0, sizeof s);
    strcpy(s.teacher, "teacher_0.h5");
    strcpy(s.dataset, "fashion20.h5");
    memset(s.teacher_sha256, 'a', 64);
    memset(s.dataset_sha256, 'd', 64);
    s.views = 2, s.seed = 1, s.dtype = dtype;
    s.pad = 2, s.pad_mode = 0, s.crop = 28, s.flip = 1;
    s.layout = (feed_teacher_layout){.outputs = FEED_OUT_FINAL | FEED_OUT_LOGITS, .batch = FUZZ_CACHE_BATCH,
                                     .final_c = 4, .final_h = 2, .final_w = 2, .stages = 3,
                                     .stage_c = {2, 3, 4}, .stage_h = {4, 3, 2}, .stage_w = {4, 3, 2},
                                     .classes = 10};
    s.n_samples = 6;
    s.compress = compress;
    return s;
}
