/* rng.c - Philox4x32-10 (Random123 constants); see include/feed/rng.h. */
#include "feed/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void feed_philox4x32_10(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32);
    uint32_t c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

uint32_t feed_rng_u32(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t o[4];
    feed_philox4x32_10(seed, stream, index, o);
    return o[0];
}

float feed_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)(feed_rng_u32(seed, stream, index) >> 8) * (1.0f / 16777216.0f);
}

uint32_t feed_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n) {
    return (uint32_t)(((uint64_t)feed_rng_u32(seed, stream, index) * n) >> 32);
}

float feed_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t o[4];
    feed_philox4x32_10(seed, stream, index, o);
    /* u1 in (0, 1] so log() is finite; computed in double for accuracy, rounded once. */
    double u1 = ((double)(o[0] >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(o[1] >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
