/* bf16_peak.c - measure the bf16 multiply, fp32 accumulate peak (see feed/fma_peak.h).
 *
 * Same method as fma_peak.c: each thread runs independent accumulation chains for a fixed
 * count; peak = flops / wall time, best of three tries. Two paths, the ones oneDNN's bf16
 * kernels take:
 *   AMX          tdpbf16ps on 16x32 bf16 tiles into 16x16 fp32 tiles: 2*16*16*32 flops each.
 *                Six accumulator tiles (tmm0-5) share one A (tmm6) and one B (tmm7) tile:
 *                enough independent work to cover the instruction's latency.
 *   AVX512-BF16  vdpbf16ps: each of the 16 fp32 lanes adds two bf16 products, 64 flops per
 *                instruction; twelve chains, as for the fp32 FMA.
 * The AMX code runs only when cpuid reports amx_tile and amx_bf16 AND the kernel grants the
 * process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM; it refuses when the kernel or
 * XCR0 lacks it): touching a tile register without that permission kills the process with
 * SIGILL. Compiled with target attributes, so the rest of the library keeps baseline flags. */
#define _DEFAULT_SOURCE /* syscall() under -std=c11 */
#include "feed/fma_peak.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "peak_internal.h"

#define CHAINS 12
#define ITERS 20000000L
#define AMX_ITERS 1000000L   /* tdpbf16ps is ~16 cycles each: 6 tiles x 1e6 ~ 0.03 s */
#define AMX_FLOPS (2.0 * 16 * 16 * 32)

/* --- AVX512-BF16 ------------------------------------------------------------------------ */

/* Twelve chains a_i += x . y (pairwise bf16 dot per lane) with x = 1 and y = 2^-20: the
 * products are normal numbers; the accumulators grow by 2^-19 a step until 16, where a
 * 2^-20 product is half an ulp and rounds away, so they stay normal and finite (checked:
 * 6.5 -> 16.0 on average over ITERS steps). The starting values differ per chain, or the
 * compiler could merge identical chains. */
__attribute__((target("avx512bf16,avx512f"))) static float chains_avx512bf16(long iters, float seed) {
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f));
    __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0x1p-20f), _mm512_set1_ps(0x1p-20f));
    __m512 a0 = _mm512_set1_ps(seed), a1 = _mm512_set1_ps(seed + 1), a2 = _mm512_set1_ps(seed + 2);
    __m512 a3 = _mm512_set1_ps(seed + 3), a4 = _mm512_set1_ps(seed + 4), a5 = _mm512_set1_ps(seed + 5);
    __m512 a6 = _mm512_set1_ps(seed + 6), a7 = _mm512_set1_ps(seed + 7), a8 = _mm512_set1_ps(seed + 8);
    __m512 a9 = _mm512_set1_ps(seed + 9), a10 = _mm512_set1_ps(seed + 10), a11 = _mm512_set1_ps(seed + 11);
    for (long k = 0; k < iters; k++) {
        a0 = _mm512_dpbf16_ps(a0, x, y), a1 = _mm512_dpbf16_ps(a1, x, y), a2 = _mm512_dpbf16_ps(a2, x, y);
        a3 = _mm512_dpbf16_ps(a3, x, y), a4 = _mm512_dpbf16_ps(a4, x, y), a5 = _mm512_dpbf16_ps(a5, x, y);
        a6 = _mm512_dpbf16_ps(a6, x, y), a7 = _mm512_dpbf16_ps(a7, x, y), a8 = _mm512_dpbf16_ps(a8, x, y);
        a9 = _mm512_dpbf16_ps(a9, x, y), a10 = _mm512_dpbf16_ps(a10, x, y), a11 = _mm512_dpbf16_ps(a11, x, y);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

/* --- AMX ---------------------------------------------------------------------------------- */

/* ldtilecfg's 64-byte layout (palette 1): every tile used is 16 rows x 64 bytes, i.e. a
 * 16x16 fp32 accumulator or a 16x32 bf16 operand (B in the VNNI pair layout, also 16x64 B). */
struct amx_tilecfg {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};
static const struct amx_tilecfg amx_cfg __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

/* Operands, filled before the first AMX run: A = bf16 1.0, B = bf16 2^-20 (normal products;
 * each tdpbf16ps adds 32 * 2^-20 to every accumulator element, ~31 over AMX_ITERS). */
static uint16_t amx_a[16 * 32] __attribute__((aligned(64)));
static uint16_t amx_b[16 * 32] __attribute__((aligned(64)));

__attribute__((target("amx-tile,amx-bf16"))) static float chains_amx(long iters, float seed) {
    float out[16 * 16] __attribute__((aligned(64)));
    (void)seed;                     /* the chains are asm volatile: nothing to merge */
    __asm__ volatile("" ::: "memory"); /* the tile loads' asm does not declare its reads */
    _tile_loadconfig(&amx_cfg);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); _tile_zero(4); _tile_zero(5);
    _tile_loadd(6, amx_a, 64);
    _tile_loadd(7, amx_b, 64);
    for (long k = 0; k < iters; k++) { /* the macros are asm statements, hence the `;`s */
        _tile_dpbf16ps(0, 6, 7); _tile_dpbf16ps(1, 6, 7); _tile_dpbf16ps(2, 6, 7);
        _tile_dpbf16ps(3, 6, 7); _tile_dpbf16ps(4, 6, 7); _tile_dpbf16ps(5, 6, 7);
    }
    float sum = 0.0f;
#define AMX_SUM(t) do { _tile_stored(t, out, 64); sum += out[0] + out[255]; } while (0)
    AMX_SUM(0); AMX_SUM(1); AMX_SUM(2); AMX_SUM(3); AMX_SUM(4); AMX_SUM(5);
#undef AMX_SUM
    _tile_release();
    return sum;
}

/* cpuid says amx_tile + amx_bf16, and Linux lets this process use the tile data state. */
static int amx_usable(void) {
#if defined(__linux__) && defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return 0; /* amx_bf16, amx_tile */
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0; /* other systems: no known way to get the permission; stay off the tiles */
#endif
}

/* cpuid leaf 7 subleaf 1 EAX bit 5; AVX-512 itself (with the OS saving zmm) from libgcc. */
static int avx512bf16_usable(void) {
    unsigned a, b, c, d;
    if (!__builtin_cpu_supports("avx512f")) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1u;
}

double feed_bf16_peak_gflops(int threads, const char **isa) {
    __builtin_cpu_init();
    long iters;
    double flops_per_iter; /* per thread */
    float (*chains)(long, float);
    if (amx_usable()) {
        for (int i = 0; i < 16 * 32; i++) amx_a[i] = 0x3f80, amx_b[i] = 0x3580; /* 1.0, 2^-20 */
        iters = AMX_ITERS, flops_per_iter = 6 * AMX_FLOPS, chains = chains_amx;
        if (isa) *isa = "amx_bf16";
    } else if (avx512bf16_usable()) {
        iters = ITERS, flops_per_iter = CHAINS * 64.0, chains = chains_avx512bf16;
        if (isa) *isa = "avx512_bf16";
    } else {
        if (isa) *isa = "none";
        return 0.0;
    }
    return feed_peak_best_of_three(chains, iters, flops_per_iter, threads);
}
