/* test_rng.c - Philox4x32-10 against the Random123 known-answer vectors, and the derived
 * distributions' basic properties. */
#include "feed/rng.h"
#include "feed_test.h"

#include <stdint.h>

int main(void) {
    /* Random123 kat_vectors: philox4x32 10 rounds, counter=0, key=0 */
    uint32_t o[4];
    feed_philox4x32_10(0, 0, 0, o);
    EXPECT_INT_EQ(o[0], 0x6627e8d5u);
    EXPECT_INT_EQ(o[1], 0xe169c58du);
    EXPECT_INT_EQ(o[2], 0xbc57ac4cu);
    EXPECT_INT_EQ(o[3], 0x9b00dbd8u);
    /* counter = all ones, key = all ones */
    feed_philox4x32_10(UINT64_MAX, UINT64_MAX, UINT64_MAX, o);
    EXPECT_INT_EQ(o[0], 0x408f276du);
    EXPECT_INT_EQ(o[1], 0x41c83b0eu);
    EXPECT_INT_EQ(o[2], 0xa20bc7c6u);
    EXPECT_INT_EQ(o[3], 0x6d5451fdu);
    /* counter = pi digits, key = e digits */
    /* words: ctr = {243f6a88 85a308d3 13198a2e 03707344}, key = {a4093822 299f31d0} */
    feed_philox4x32_10(((uint64_t)0x299f31d0u << 32) | 0xa4093822u, ((uint64_t)0x03707344u << 32) | 0x13198a2eu,
                       ((uint64_t)0x85a308d3u << 32) | 0x243f6a88u, o);
    EXPECT_INT_EQ(o[0], 0xd16cfe09u);
    EXPECT_INT_EQ(o[1], 0x94fdccebu);
    EXPECT_INT_EQ(o[2], 0x5001e420u);
    EXPECT_INT_EQ(o[3], 0x24126ea1u);

    /* Distributions: mean/variance of uniform and normal over 200k draws, range of below(). */
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    int below_bad = 0, hist[7] = {0};
    for (int i = 0; i < n; i++) {
        float u = feed_rng_uniform(42, FEED_RNG_TEST, (uint64_t)i);
        if (u < 0.f || u >= 1.f) below_bad++;
        su += u;
        double z = feed_rng_normal(42, FEED_RNG_TEST, (uint64_t)i);
        sn += z;
        sn2 += z * z;
        uint32_t b = feed_rng_below(42, FEED_RNG_AUGMENT, (uint64_t)i, 7);
        if (b >= 7) below_bad++; else hist[b]++;
    }
    EXPECT_INT_EQ(below_bad, 0);
    EXPECT_NEAR_REL(su / n, 0.5, 0.005);
    EXPECT_NEAR_REL(sn / n, 0.0, 0.01);
    EXPECT_NEAR_REL(sn2 / n, 1.0, 0.01);
    for (int k = 0; k < 7; k++) EXPECT_NEAR_REL(hist[k] / (double)n, 1.0 / 7, 0.005);
    /* Different seeds and streams give different numbers. */
    EXPECT(feed_rng_u32(1, 1, 5) != feed_rng_u32(2, 1, 5));
    EXPECT(feed_rng_u32(1, 1, 5) != feed_rng_u32(1, 2, 5));
    return feed_test_finish("test_rng");
}
