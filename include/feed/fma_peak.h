/* fma_peak.h - this machine's fp32 peak, measured: what a benchmark's GFLOP/s is a fraction of. */
#ifndef FEED_FMA_PEAK_H
#define FEED_FMA_PEAK_H

/* Measured fp32 GFLOP/s of `threads` OpenMP threads issuing independent fused multiply-adds
 * on the widest vectors the CPU has (AVX-512, else AVX2+FMA). Takes about 0.2 s. Returns 0
 * when the CPU has neither (no meaningful peak to report). *isa (may be NULL) names the
 * vector width used: "avx512", "avx2" or "none". */
double feed_fma_peak_gflops(int threads, const char **isa);

#endif
