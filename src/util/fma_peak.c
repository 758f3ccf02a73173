/* fma_peak.c - measure the fp32 FMA peak (see feed/fma_peak.h).
 *
 * Why measure instead of quoting a number: a quoted "310 GFLOP/s" for this CPU is OpenBLAS sgemm,
 * not the hardware's limit, so oneDNN convolutions report > 100% of it. Each thread runs twelve
 * independent FMA chains (enough to cover the FMA latency x units on current x86 cores) for
 * a fixed count; peak = flops / wall time of the slowest thread, best of three tries (the
 * first can run before the clock has ramped up). Compiled for the ISA with target
 * attributes, so the rest of the library keeps the baseline x86-64 flags. */
#include "feed/fma_peak.h"

#include <immintrin.h>
#include <omp.h>

#include "peak_internal.h"

#define CHAINS 12
#define ITERS 20000000L

/* Defines `static VEC NAME(long iters, float seed)`: twelve chains a_i = a_i * b + c for
 * `iters` steps, returned summed. b slightly > 1 and c tiny keep the values normal and finite
 * over ITERS steps ((1 + 1e-7)^2e7 ~ e^2). The starting values differ per chain, or the
 * compiler merges the identical chains into one. */
#define DEFINE_CHAINS(NAME, TARGET, VEC, SET1, FMA, ADD)                                          \
    __attribute__((target(TARGET))) static VEC NAME(long iters, float seed) {                    \
        VEC b = SET1(1.0000001f), c = SET1(1e-7f);                                                 \
        VEC a0 = SET1(seed), a1 = SET1(seed + 1), a2 = SET1(seed + 2), a3 = SET1(seed + 3);        \
        VEC a4 = SET1(seed + 4), a5 = SET1(seed + 5), a6 = SET1(seed + 6), a7 = SET1(seed + 7);    \
        VEC a8 = SET1(seed + 8), a9 = SET1(seed + 9), a10 = SET1(seed + 10), a11 = SET1(seed + 11); \
        for (long k = 0; k < iters; k++) {                                                        \
            a0 = FMA(a0, b, c), a1 = FMA(a1, b, c), a2 = FMA(a2, b, c), a3 = FMA(a3, b, c);        \
            a4 = FMA(a4, b, c), a5 = FMA(a5, b, c), a6 = FMA(a6, b, c), a7 = FMA(a7, b, c);        \
            a8 = FMA(a8, b, c), a9 = FMA(a9, b, c), a10 = FMA(a10, b, c), a11 = FMA(a11, b, c);    \
        }                                                                                          \
        VEC s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                 \
        return ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                            \
    }

DEFINE_CHAINS(vec_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
DEFINE_CHAINS(vec_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)

__attribute__((target("avx512f"))) static float chains_avx512(long iters, float seed) {
    return _mm512_reduce_add_ps(vec_avx512(iters, seed));
}

__attribute__((target("avx2,fma"))) static float chains_avx2(long iters, float seed) {
    float v[8];
    _mm256_storeu_ps(v, vec_avx2(iters, seed));
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

double feed_fma_peak_gflops(int threads, const char **isa) {
    __builtin_cpu_init();
    int width; /* fp32 lanes */
    float (*chains)(long, float);
    if (__builtin_cpu_supports("avx512f")) {
        width = 16, chains = chains_avx512;
        if (isa) *isa = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        width = 8, chains = chains_avx2;
        if (isa) *isa = "avx2";
    } else {
        if (isa) *isa = "none";
        return 0.0;
    }
    return feed_peak_best_of_three(chains, ITERS, CHAINS * width * 2.0, threads);
}

double feed_peak_best_of_three(float (*chains)(long, float), long iters, double flops_per_iter, int threads) {
    if (threads < 1) threads = 1;
    double best = 0.0;
    volatile float sink = 0.0f; /* keeps the chains from being optimised away */
    for (int attempt = 0; attempt < 3; attempt++) {
        float total = 0.0f;
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += chains(iters, 1.0f + (float)omp_get_thread_num());
        double sec = omp_get_wtime() - t0;
        sink = total;
        double gflops = (double)threads * (double)iters * flops_per_iter / sec / 1e9;
        if (gflops > best) best = gflops;
    }
    (void)sink;
    return best;
}
