/* fuzz_cache.c - libFuzzer target: the feature-cache reader on arbitrary files.
 *
 * Input: the bytes of a file; written to /dev/shm and opened with feed_cache_open as a
 * student with distill.source = cache does (the spec of fuzz_cache_spec.h, fp32, bf16 or
 * fp16 chosen by the file's own dtype attribute), then every row of every view is read in
 * minibatches, through the direct pread path (uncompressed) or HDF5 (compressed). A cache it
 * accepts must list its samples increasing, and reading must fill every slot.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_cache_spec.h"
#include "fuzz_common.h"

static volatile float g_sink;
static feed_cache *g_cache;

static void read_cache(void *path) {
    /* the student's spec follows the file's dtype and compression (both are its own choice:
       the student takes what the cache job wrote), so mutations reach the rows */
    feed_cache_spec expect = fuzz_cache_spec(0, 0);
    char why[600];
    for (int dtype = 1; dtype < 3 && !feed_cache_is(path, &expect, why, sizeof why); dtype++)
        expect = fuzz_cache_spec(dtype, 0);
    g_cache = feed_cache_open(path, &expect, "teacher 1");
    int64_t n = 0;
    const int64_t *samples = feed_cache_samples(g_cache, &n);
    for (int64_t r = 1; r < n; r++)
        if (samples[r] <= samples[r - 1]) {
            fprintf(stderr, "fuzz_cache: feed_cache_open accepted samples that do not increase\n");
            abort();
        }
    enum { B = FUZZ_CACHE_BATCH };
    float payload[(4 * 2 * 2 + 10) * B];
    int32_t aug[3 * B];
    for (int v = 0; v < expect.views; v++)
        for (int64_t first = 0; first < n; first += B) {
            int64_t rows[B];
            int k = 0;
            for (; k < B && first + k < n; k++) rows[k] = n - 1 - (first + k); /* out of order */
            memset(payload, 0xff, sizeof payload);
            feed_cache_read_rows(g_cache, v, rows, k, payload, aug);
            float s = 0;
            for (size_t i = 0; i < sizeof payload / sizeof payload[0]; i++) s += payload[i];
            g_sink = s;
        }
    feed_cache_close(g_cache);
    g_cache = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_init();
    const char *path = fuzz_tmp_path("cache.h5");
    fuzz_write_file(path, data, size);
    if (fuzz_catch(read_cache, (void *)path) != 0) g_cache = NULL; /* its HDF5 ids are closed; the rest is a few KB */
    return 0;
}
