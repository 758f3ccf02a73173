/* bf16.h - bfloat16 <-> fp32 for C loops over bf16 data (the top 16 bits of an fp32).
 *
 * Encoding rounds to nearest, ties to even, with integer arithmetic on the bit patterns, so
 * the result does not depend on the FPU rounding mode or on compiler flags; NaNs stay NaN
 * (quiet, sign and top payload kept), +-Inf stay Inf. Decoding is exact. The same rounding
 * as oneDNN's reorders and bf16 kernels, so a value written by a C loop and one written by a
 * primitive agree bit for bit. Inline and branch-light: the loops that use them vectorise.
 */
#ifndef FEED_BF16_H
#define FEED_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t feed_bf16_from_bits(uint32_t b) {
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u); /* quiet NaN */
    /* Adding 0x7fff plus the lowest kept bit rounds half to even; a carry out of the
     * mantissa bumps the exponent, which is the right answer (up to Inf). */
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

static inline uint16_t feed_bf16_round(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return feed_bf16_from_bits(b);
}

static inline float feed_bf16_float(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

#endif
