/* test_wire_format.c - fp32 <-> bf16 / fp16 against a reference computed independently:
 * every representable value is decoded with ldexp, and rounding is a search in that sorted
 * table (nearest value, ties to the even pattern, past the largest finite value -> Inf).
 * Exhaustive over all 2^16 patterns, every rounding tie and its neighbours, and random fp32
 * bit patterns (NaN, Inf, subnormals, overflow included). */
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "feed/feature_transport.h"
#include "feed_test.h"

typedef struct {
    const char *name;
    int mant_bits, exp_bias; /* 10, 15 (fp16) | 7, 127 (bf16) */
    uint16_t inf;            /* pattern of +Inf: 0x7c00 | 0x7f80 */
    uint16_t (*encode)(float);
    float (*decode)(uint16_t);
} format;

static const format FP16 = {"fp16", 10, 15, 0x7c00, feed_fp32_to_fp16, feed_fp16_to_fp32};
static const format BF16 = {"bf16", 7, 127, 0x7f80, feed_fp32_to_bf16, feed_bf16_to_fp32};

static uint32_t bits_of(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}
static float float_of(uint32_t b) {
    float x;
    memcpy(&x, &b, 4);
    return x;
}

/* Value of a non-negative pattern p <= inf; the Inf pattern maps to the power of two that
 * would follow the largest finite value, so ties beyond it round "to even" = Inf. */
static double ref_value(const format *f, uint32_t p) {
    uint32_t e = p >> f->mant_bits, m = p & ((1u << f->mant_bits) - 1);
    if (e == 0) return ldexp((double)m, 1 - f->exp_bias - f->mant_bits);
    return ldexp((double)((1u << f->mant_bits) + m), (int)e - f->exp_bias - f->mant_bits);
}

static uint16_t ref_round(const format *f, float x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (isnan(x)) return 0xffff; /* checked separately */
    double a = fabs((double)x);
    uint32_t lo = 0, hi = f->inf; /* largest p with value(p) <= a */
    if (a >= ref_value(f, f->inf)) return sign | f->inf;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (ref_value(f, mid) <= a) lo = mid; else hi = mid - 1;
    }
    double below = ref_value(f, lo);
    if (below == a) return sign | (uint16_t)lo;
    double above = ref_value(f, lo + 1);
    uint32_t p;
    if (a - below < above - a) p = lo;
    else if (a - below > above - a) p = lo + 1;
    else p = (lo & 1) ? lo + 1 : lo;
    return sign | (uint16_t)p;
}

static int mismatches;
static void check_round(const format *f, float x) {
    uint16_t got = f->encode(x);
    uint16_t want;
    if (isnan(x)) {
        /* NaN: sign kept, quiet, top payload bits kept */
        uint32_t b = bits_of(x);
        uint16_t quiet = (uint16_t)(1u << (f->mant_bits - 1));
        want = (uint16_t)(((b >> 16) & 0x8000) | f->inf | quiet |
                          ((b & 0x7fffff) >> (23 - f->mant_bits)));
    } else {
        want = ref_round(f, x);
    }
    if (got != want && ++mismatches <= 10)
        feed_test_fail(__FILE__, __LINE__, "%s(%a = 0x%08x) = 0x%04x, reference 0x%04x", f->name,
                       (double)x, bits_of(x), got, want);
}

static void test_format(const format *f) {
    /* 1. decoding: every pattern, exact */
    mismatches = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = f->decode((uint16_t)h);
        uint32_t a = h & 0x7fff;
        int neg = (h & 0x8000) != 0;
        if (a > f->inf) {
            if (!isnan(got) || (signbit(got) != 0) != neg) mismatches++;
        } else if (a == f->inf) {
            if (!isinf(got) || (signbit(got) != 0) != neg) mismatches++;
        } else {
            double want = neg ? -ref_value(f, a) : ref_value(f, a);
            if ((double)got != want || (signbit(got) != 0) != neg) mismatches++;
        }
    }
    EXPECT_INT_EQ(mismatches, 0);

    /* 2. round trip: every pattern survives encode(decode(h)); NaN only gains the quiet bit */
    mismatches = 0;
    uint16_t quiet = (uint16_t)(1u << (f->mant_bits - 1));
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = f->encode(f->decode((uint16_t)h));
        uint16_t want = (h & 0x7fff) > f->inf ? (uint16_t)(h | quiet) : (uint16_t)h;
        if (back != want && ++mismatches <= 10)
            feed_test_fail(__FILE__, __LINE__, "%s round trip 0x%04x -> 0x%04x", f->name, h, back);
    }
    EXPECT_INT_EQ(mismatches, 0);

    /* 3. every tie between neighbours (incl. max finite / Inf) and the floats around it */
    mismatches = 0;
    for (uint32_t p = 0; p < f->inf; p++) {
        float mid = (float)((ref_value(f, p) + ref_value(f, p + 1)) / 2);
        EXPECT((double)mid == (ref_value(f, p) + ref_value(f, p + 1)) / 2 || p + 1 == f->inf);
        float around[3] = {mid, nextafterf(mid, INFINITY), nextafterf(mid, 0)};
        for (int k = 0; k < 3; k++) {
            check_round(f, around[k]);
            check_round(f, -around[k]);
        }
    }
    EXPECT_INT_EQ(mismatches, 0);

    /* 4. random fp32 bit patterns (xorshift), covering NaNs, Infs and subnormals */
    mismatches = 0;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 2000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        check_round(f, float_of((uint32_t)(s >> 16)));
    }
    /* every fp32 with an exponent near the format's subnormal and overflow boundaries */
    for (uint32_t b = 0; b < (1u << 23); b += 97) {
        for (uint32_t e = 90; e <= 150; e += 6) check_round(f, float_of((e << 23) | b));
        for (uint32_t e = 140; e <= 254; e += 2) check_round(f, float_of((e << 23) | b));
    }
    EXPECT_INT_EQ(mismatches, 0);
}

static void test_special_values(void) {
    /* fp16 */
    EXPECT_INT_EQ(feed_fp32_to_fp16(65504.0f), 0x7bff);
    EXPECT_INT_EQ(feed_fp32_to_fp16(65519.996f), 0x7bff);
    EXPECT_INT_EQ(feed_fp32_to_fp16(65520.0f), 0x7c00);   /* tie with 65536 -> even = Inf */
    EXPECT_INT_EQ(feed_fp32_to_fp16(-1e10f), 0xfc00);
    EXPECT_INT_EQ(feed_fp32_to_fp16(FLT_MAX), 0x7c00);
    EXPECT_INT_EQ(feed_fp32_to_fp16(INFINITY), 0x7c00);
    EXPECT_INT_EQ(feed_fp32_to_fp16(-INFINITY), 0xfc00);
    EXPECT_INT_EQ(feed_fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_INT_EQ(feed_fp32_to_fp16(0x1p-24f), 0x0001);    /* smallest subnormal */
    EXPECT_INT_EQ(feed_fp32_to_fp16(0x1p-25f), 0x0000);    /* tie -> even 0 */
    EXPECT_INT_EQ(feed_fp32_to_fp16(0x1.000002p-25f), 0x0001);
    EXPECT_INT_EQ(feed_fp32_to_fp16(0x1.8p-24f), 0x0002);  /* tie 1.5 -> even 2 */
    EXPECT_INT_EQ(feed_fp32_to_fp16(0x1.ff8p-15f), 0x03ff); /* largest subnormal */
    EXPECT_INT_EQ(feed_fp32_to_fp16(0x1.ffcp-15f), 0x0400); /* tie -> even: the smallest normal */
    EXPECT_INT_EQ(feed_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00); /* tie -> even */
    EXPECT_INT_EQ(feed_fp32_to_fp16(1.0f + 0x3p-11f), 0x3c02);
    EXPECT_INT_EQ(feed_fp32_to_fp16(FLT_MIN), 0x0000);
    EXPECT_INT_EQ(feed_fp32_to_fp16(float_of(0x7f800001)), 0x7e00); /* sNaN -> qNaN */
    EXPECT_INT_EQ(feed_fp32_to_fp16(float_of(0xffc00000)), 0xfe00);
    EXPECT(isnan(feed_fp16_to_fp32(0x7c01)));
    EXPECT((double)feed_fp16_to_fp32(0x0001) == 0x1p-24);
    /* bf16 */
    EXPECT_INT_EQ(feed_fp32_to_bf16(1.0f), 0x3f80);
    EXPECT_INT_EQ(feed_fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);  /* tie -> even */
    EXPECT_INT_EQ(feed_fp32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
    EXPECT_INT_EQ(feed_fp32_to_bf16(FLT_MAX), 0x7f80);         /* beyond max + half ulp -> Inf */
    EXPECT_INT_EQ(feed_fp32_to_bf16(0x1.fe0000p127f), 0x7f7f); /* largest finite bf16 */
    EXPECT_INT_EQ(feed_fp32_to_bf16(-INFINITY), 0xff80);
    EXPECT_INT_EQ(feed_fp32_to_bf16(float_of(0x00000001)), 0x0000); /* subnormal underflow */
    EXPECT_INT_EQ(feed_fp32_to_bf16(float_of(0x00018000)), 0x0002); /* subnormal tie -> even */
    EXPECT_INT_EQ(feed_fp32_to_bf16(float_of(0x7f800001)), 0x7fc0); /* sNaN -> qNaN */
    EXPECT_INT_EQ(feed_fp32_to_bf16(float_of(0xff812345)), 0xffc1);
}

static void test_arrays_and_names(void) {
    enum { N = 10007 };
    static float src[N], back[N];
    static uint16_t wire16[N];
    static float wire32[N];
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        src[i] = float_of(s);
    }
    int bad = 0;
    feed_wire_encode(FEED_WIRE_FP32, src, wire32, N);
    feed_wire_decode(FEED_WIRE_FP32, wire32, back, N);
    EXPECT(memcmp(src, back, sizeof src) == 0); /* bit for bit, NaN payloads too */
    feed_wire_encode(FEED_WIRE_BF16, src, wire16, N);
    feed_wire_decode(FEED_WIRE_BF16, wire16, back, N);
    for (int i = 0; i < N; i++)
        bad += wire16[i] != feed_fp32_to_bf16(src[i]) || bits_of(back[i]) != bits_of(feed_bf16_to_fp32(wire16[i]));
    feed_wire_encode(FEED_WIRE_FP16, src, wire16, N);
    feed_wire_decode(FEED_WIRE_FP16, wire16, back, N);
    for (int i = 0; i < N; i++)
        bad += wire16[i] != feed_fp32_to_fp16(src[i]) || bits_of(back[i]) != bits_of(feed_fp16_to_fp32(wire16[i]));
    EXPECT_INT_EQ(bad, 0);

    feed_wire_dtype d;
    EXPECT(feed_wire_dtype_parse("bf16", &d) == 0 && d == FEED_WIRE_BF16);
    EXPECT(feed_wire_dtype_parse("fp16", &d) == 0 && d == FEED_WIRE_FP16);
    EXPECT(feed_wire_dtype_parse("fp32", &d) == 0 && d == FEED_WIRE_FP32);
    EXPECT(feed_wire_dtype_parse("float16", &d) == -1);
    EXPECT(strcmp(feed_wire_dtype_name(FEED_WIRE_BF16), "bf16") == 0);
    EXPECT_INT_EQ(feed_wire_dtype_size(FEED_WIRE_FP16), 2);
    EXPECT_INT_EQ(feed_wire_dtype_size(FEED_WIRE_FP32), 4);
}

int main(void) {
    test_format(&FP16);
    test_format(&BF16);
    test_special_values();
    test_arrays_and_names();
    return feed_test_finish("test_wire_format");
}
