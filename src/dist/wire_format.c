/* wire_format.c - fp32 <-> bf16 / fp16 for the feature-map wire (transfer = fp32|bf16|fp16).
 *
 * Encoding rounds to nearest, ties to even, with integer arithmetic on the bit patterns, so
 * the result does not depend on the FPU rounding mode or on compiler flags. NaNs keep their
 * sign and top payload bits and become quiet (as x86 F16C and ARM do); Inf stays Inf.
 * Decoding is exact. The reference these are tested against (tests/dist/test_wire_format.c)
 * is computed differently: by searching the sorted table of all 2^16 representable values.
 */
#include <string.h>

#include "feed/bf16.h"
#include "feed/feature_transport.h"

static inline uint32_t float_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float bits_float(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

int feed_wire_dtype_parse(const char *name, feed_wire_dtype *out) {
    static const struct { const char *name; feed_wire_dtype dtype; } table[] = {
        {"fp32", FEED_WIRE_FP32}, {"bf16", FEED_WIRE_BF16}, {"fp16", FEED_WIRE_FP16}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (name && strcmp(name, table[i].name) == 0) {
            *out = table[i].dtype;
            return 0;
        }
    return -1;
}

const char *feed_wire_dtype_name(feed_wire_dtype dtype) {
    switch (dtype) {
    case FEED_WIRE_FP32: return "fp32";
    case FEED_WIRE_BF16: return "bf16";
    case FEED_WIRE_FP16: return "fp16";
    }
    return "invalid";
}

size_t feed_wire_dtype_size(feed_wire_dtype dtype) { return dtype == FEED_WIRE_FP32 ? 4 : 2; }

/* ---- bf16: the top 16 bits of an fp32 (feed/bf16.h) ---- */

uint16_t feed_fp32_to_bf16(float x) { return feed_bf16_round(x); }

float feed_bf16_to_fp32(uint16_t h) { return feed_bf16_float(h); }

/* ---- fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits ---- */

static inline uint16_t fp16_from_bits(uint32_t b) {
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu); /* quiet NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 (max 65504 + half ulp): Inf */
    if (a >= 0x38800000u) {                      /* normal fp16: >= 2^-14 */
        uint32_t v = a - (112u << 23);           /* rebias the exponent: 127 -> 15 */
        v += 0xfffu + ((v >> 13) & 1u);          /* round 23 -> 10 mantissa bits, ties to even */
        return sign | (uint16_t)(v >> 13);
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25 (half the smallest subnormal, tie -> 0) */
    /* subnormal fp16: units of 2^-24; a = 1.m * 2^(e-127) = (m|2^23) * 2^(e-150) */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++; /* q == 0x400 is the smallest normal */
    return sign | (uint16_t)q;
}

uint16_t feed_fp32_to_fp16(float x) { return fp16_from_bits(float_bits(x)); }

float feed_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return bits_float(sign | 0x7f800000u | (m << 13)); /* Inf, NaN */
    if (e == 0) return bits_float(sign | float_bits((float)m * 0x1p-24f)); /* 0, subnormal: exact */
    return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

void feed_wire_encode(feed_wire_dtype dtype, const float *src, void *wire, size_t n) {
    uint16_t *w = wire;
    switch (dtype) {
    case FEED_WIRE_FP32: memcpy(wire, src, n * sizeof(float)); return;
    case FEED_WIRE_BF16:
        for (size_t i = 0; i < n; i++) w[i] = feed_bf16_from_bits(float_bits(src[i]));
        return;
    case FEED_WIRE_FP16:
        for (size_t i = 0; i < n; i++) w[i] = fp16_from_bits(float_bits(src[i]));
        return;
    }
}

void feed_wire_decode(feed_wire_dtype dtype, const void *wire, float *dst, size_t n) {
    const uint16_t *w = wire;
    switch (dtype) {
    case FEED_WIRE_FP32: memcpy(dst, wire, n * sizeof(float)); return;
    case FEED_WIRE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = feed_bf16_to_fp32(w[i]);
        return;
    case FEED_WIRE_FP16:
        for (size_t i = 0; i < n; i++) dst[i] = feed_fp16_to_fp32(w[i]);
        return;
    }
}
