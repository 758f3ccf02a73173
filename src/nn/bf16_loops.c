/* bf16_loops.c - the engine's own passes over bf16 activation gradients, in AVX512-BF16.
 *
 * A bf16 net exists only where oneDNN has bf16 kernels (feed_engine_bf16_supported: AVX512-BF16
 * or AMX, and every AMX CPU has AVX512-BF16), so these run unconditionally there; the rest of
 * the library keeps the baseline x86-64 flags (target attributes). Each element is loaded to
 * fp32 (exact), combined in fp32 and rounded once with vcvtneps2bf16 - round to nearest even,
 * the instruction oneDNN's bf16 kernels round with (it also flushes fp32 subnormals to zero,
 * as they do). The portable loops (feed/bf16.h) ran these passes 4-5x slower: the rounding's
 * NaN test kept gcc from vectorising them. */
#include <immintrin.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>

#include "nn_internal.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

TARGET static inline __m512 load16(const uint16_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

TARGET static inline void store16(uint16_t *p, __m512 v, __mmask16 m) {
    _mm256_mask_storeu_epi16(p, m, (__m256i)_mm512_cvtneps_pbh(v));
}

static inline __mmask16 tail_mask(long long n, long long i) {
    long long r = n - i;
    return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1u);
}

/* [i0, i1) of each pass: vector code in a function of its own, called from the OpenMP
 * region (an outlined parallel region does not inherit the target attribute). */
TARGET static void vec_add_range(uint16_t *dst, const uint16_t *src, long long i0, long long i1) {
    for (long long i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask(i1, i);
        store16(dst + i, _mm512_add_ps(load16(dst + i, m), load16(src + i, m)), m);
    }
}

TARGET static void finalize_range(uint16_t *d, const uint16_t *y, const uint16_t *d0, const uint16_t *d1,
                                  int written, int relu, long long i0, long long i1) {
    const __m512 zero = _mm512_setzero_ps();
    for (long long i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask(i1, i);
        __m512 g = written ? load16(d + i, m) : zero;
        if (d0) g = _mm512_add_ps(g, load16(d0 + i, m));
        if (d1) g = _mm512_add_ps(g, load16(d1 + i, m));
        if (relu) g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(load16(y + i, m), zero, _CMP_GT_OQ), g);
        store16(d + i, g, m);
    }
}

/* This thread's share of n elements, in whole vectors of 16 (the last share takes the tail). */
static void share(long long n, long long *i0, long long *i1) {
    long long blocks = (n + 15) / 16, t = omp_get_thread_num(), T = omp_get_num_threads();
    long long b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
    *i0 = 16 * b0;
    *i1 = 16 * b1 < n ? 16 * b1 : n;
}

void feed_bf16_vec_add(uint16_t *dst, const uint16_t *src, size_t n) {
#pragma omp parallel
    {
        long long i0, i1;
        share((long long)n, &i0, &i1);
        vec_add_range(dst, src, i0, i1);
    }
}

void feed_bf16_add_grad_finalize(uint16_t *d, const uint16_t *y, const uint16_t *d0, const uint16_t *d1, size_t n,
                                 int written, int relu) {
#pragma omp parallel
    {
        long long i0, i1;
        share((long long)n, &i0, &i1);
        finalize_range(d, y, d0, d1, written, relu, i0, i1);
    }
}
