/* rng.h - counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
 *
 * A draw is a pure function of (seed, stream, index): any rank, thread or resumed run
 * computes the same number for the same triple without carrying generator state.
 * `stream` separates purposes (see enum feed_rng_stream) so they never overlap;
 * `index` numbers the draws within a stream (e.g. epoch * N + sample index).
 */
#ifndef FEED_RNG_H
#define FEED_RNG_H

#include <stdint.h>

/* Purposes; add new ones at the end so existing runs keep their numbers. */
enum feed_rng_stream {
    FEED_RNG_PERMUTATION = 1, /* epoch permutation of the training set */
    FEED_RNG_AUGMENT = 2,     /* crop offsets and flips */
    FEED_RNG_INIT = 3,        /* weight initialisation */
    FEED_RNG_DROPOUT = 4,     /* dropout masks */
    FEED_RNG_SUBSET = 5,      /* random subset selection */
    FEED_RNG_TEST = 6,        /* test inputs */
};

/* The raw generator: 4 x 32 random bits for a 128-bit counter under a 64-bit key. */
void feed_philox4x32_10(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]);

/* 32 random bits for (seed, stream, index). */
uint32_t feed_rng_u32(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform in [0, 1) with 24 random bits (exactly representable in float). */
float feed_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Integer in [0, n), n >= 1 (Lemire's multiply-shift; bias < n / 2^32). */
uint32_t feed_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n);
/* Standard normal (Box-Muller on one Philox block). */
float feed_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

#endif
