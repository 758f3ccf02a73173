/* test_bf16_loops.c - the engine's AVX512-BF16 passes (src/nn/bf16_loops.c) against the
 * portable rounding of feed/bf16.h, element by element and bit for bit: every combination of
 * written / deferred gradients / ReLU mask of the residual add's finalisation, and the
 * accumulation, at lengths with and without a partial last vector. Values are normal fp32
 * (the instruction flushes subnormals; the portable code does not). Skipped (77) on CPUs
 * without bf16 kernels, where no bf16 net is ever built. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/nn/nn_internal.h"
#include "feed/bf16.h"
#include "feed/rng.h"
#include "feed_test.h"

static void fill(uint16_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = feed_bf16_round((float)feed_rng_normal(seed, FEED_RNG_TEST, i));
}

int main(void) {
    if (!feed_engine_bf16_supported()) {
        printf("test_bf16_loops: SKIP: no bf16 kernels on this CPU\n");
        return 77;
    }
    const size_t lens[] = {1, 15, 16, 37, 4096 + 5};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        uint16_t *d = malloc(n * 2), *y = malloc(n * 2), *a = malloc(n * 2), *b = malloc(n * 2), *got = malloc(n * 2);
        fill(y, n, 1), fill(a, n, 2), fill(b, n, 3);
        for (int mode = 0; mode < 16; mode++) {
            int written = mode & 1, relu = (mode >> 1) & 1, nd = mode >> 2; /* nd: 0, 1, 2 deferred (3 skipped) */
            if (nd == 3) continue;
            fill(d, n, 4);
            memcpy(got, d, n * 2);
            feed_bf16_add_grad_finalize(got, y, nd > 0 ? a : NULL, nd > 1 ? b : NULL, n, written, relu);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                float g = written ? feed_bf16_float(d[i]) : 0.0f;
                if (nd > 0) g += feed_bf16_float(a[i]);
                if (nd > 1) g += feed_bf16_float(b[i]);
                uint16_t want = (relu && !(feed_bf16_float(y[i]) > 0.0f)) ? 0 : feed_bf16_round(g);
                bad += got[i] != want;
            }
            feed_test_checks++;
            if (bad) feed_test_fail(__FILE__, __LINE__, "finalize n=%zu written=%d relu=%d deferred=%d: %zu differ", n,
                                    written, relu, nd, bad);
        }
        fill(d, n, 5);
        memcpy(got, d, n * 2);
        feed_bf16_vec_add(got, a, n);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += got[i] != feed_bf16_round(feed_bf16_float(d[i]) + feed_bf16_float(a[i]));
        feed_test_checks++;
        if (bad) feed_test_fail(__FILE__, __LINE__, "add n=%zu: %zu differ", n, bad);
        free(d), free(y), free(a), free(b), free(got);
    }
    return feed_test_finish("test_bf16_loops");
}
