/* engine.h - the process-wide oneDNN CPU engine and stream.
 *
 * One engine and one in-order stream serve every network of the process. oneDNN runs its
 * primitives on OpenMP threads: the count is OMP_NUM_THREADS, or the value passed to
 * feed_engine_set_threads() before the first network is built.
 */
#ifndef FEED_ENGINE_H
#define FEED_ENGINE_H

#include <oneapi/dnnl/dnnl.h>

/* Set the OpenMP thread count (n >= 1) for oneDNN and feed's own loops. */
void feed_engine_set_threads(int n);
/* Threads used (omp_get_max_threads()). */
int feed_engine_threads(void);

/* Lazily created on first use; never NULL (fails loudly). */
dnnl_engine_t feed_engine(void);
dnnl_stream_t feed_stream(void);
/* Release the engine and stream (optional, at exit; for leak checkers). */
void feed_engine_shutdown(void);

/* Winograd convolutions where they are faster (3x3, stride 1, no groups, >= 64 input and
 * output channels, and oneDNN has a jit Winograd kernel for the shape; see src/nn/conv.c).
 * On by default; off = direct convolutions everywhere, PyTorch's algorithm. Set before
 * building networks: a network keeps the choice it was planned with. */
void feed_engine_set_winograd(int on);
int feed_engine_winograd(void);

/* The precision (FEED_PRECISION_*, net.h) of the networks the application builds: inference
 * networks (teachers, evaluation: run.precision) and training networks (students and their
 * modules: train.precision). Set once at start; fp32 by default. feed_engine_precision(1)
 * is the inference one. */
void feed_engine_set_precision(int inference, int training);
int feed_engine_precision(int inference_only);

/* 1 if oneDNN has bf16 kernels here (AVX512-BF16 or AMX), else 0. Nets built for bf16 on a
 * CPU without them are built for fp32, and the first such build says so once on stderr. */
int feed_engine_bf16_supported(void);
/* Called by a net asked for bf16 on a CPU without it: the one message (once per process). */
void feed_engine_bf16_fallback_note(void);

/* The CPU ISA oneDNN dispatches to, e.g. "avx512_core" (for benchmark reports). */
const char *feed_engine_isa(void);

#endif
