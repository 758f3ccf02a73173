/* peak_internal.h - the timing loop fma_peak.c and bf16_peak.c share (not a public header). */
#ifndef FEED_PEAK_INTERNAL_H
#define FEED_PEAK_INTERNAL_H

/* GFLOP/s of `threads` OpenMP threads each running chains(iters, seed) (seeds differ per
 * thread), flops_per_iter flops per iteration and thread: flops / wall time of the slowest
 * thread, best of three tries (the first can run before the clock has ramped up). */
double feed_peak_best_of_three(float (*chains)(long, float), long iters, double flops_per_iter, int threads);

#endif
