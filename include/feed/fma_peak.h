/* fma_peak.h - this machine's fp32 peak, measured: what a benchmark's GFLOP/s is a fraction of. */
#ifndef FEED_FMA_PEAK_H
#define FEED_FMA_PEAK_H

/* Measured fp32 GFLOP/s of `threads` OpenMP threads issuing independent fused multiply-adds
 * on the widest vectors the CPU has (AVX-512, else AVX2+FMA). Takes about 0.2 s. Returns 0
 * when the CPU has neither (no meaningful peak to report). *isa (may be NULL) names the
 * vector width used: "avx512", "avx2" or "none". */
double feed_fma_peak_gflops(int threads, const char **isa);

/* Measured GFLOP/s of `threads` OpenMP threads multiplying bf16 and accumulating into fp32,
 * the way oneDNN's bf16 kernels do: AMX tile dot products (tdpbf16ps) when the CPU has
 * amx_tile + amx_bf16 and Linux grants the process the tile state, else AVX512-BF16
 * (vdpbf16ps, twice the flops per instruction of an fp32 FMA), else none. Takes about
 * 0.2-0.3 s. Returns 0 when the CPU has neither. *isa (may be NULL) names the path used:
 * "amx_bf16", "avx512_bf16" or "none". Defined in src/util/bf16_peak.c. */
double feed_bf16_peak_gflops(int threads, const char **isa);

#endif
