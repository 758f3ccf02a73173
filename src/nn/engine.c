/* engine.c - the process-wide oneDNN engine and stream (see include/feed/engine.h). */
#include "feed/engine.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static int g_winograd = 1;
static int g_precision[2]; /* [0] training, [1] inference networks; FEED_PRECISION_FP32 = 0 */

void feed_engine_set_precision(int inference, int training) {
    g_precision[1] = inference;
    g_precision[0] = training;
}

int feed_engine_precision(int inference_only) { return g_precision[inference_only != 0]; }

void feed_engine_set_winograd(int on) { g_winograd = on != 0; }
int feed_engine_winograd(void) { return g_winograd; }

void feed_engine_set_threads(int n) {
    FEED_CHECK(n >= 1, "pass --threads N with N >= 1", "bad thread count %d", n);
    omp_set_num_threads(n);
}

int feed_engine_threads(void) { return omp_get_max_threads(); }

dnnl_engine_t feed_engine(void) {
    if (!g_engine) {
        CHECK_DNNL(dnnl_engine_create(&g_engine, dnnl_cpu, 0));
        CHECK_DNNL(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags));
    }
    return g_engine;
}

dnnl_stream_t feed_stream(void) {
    feed_engine();
    return g_stream;
}

void feed_engine_shutdown(void) {
    if (g_stream) dnnl_stream_destroy(g_stream);
    if (g_engine) dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
}

int feed_engine_bf16_supported(void) {
    if (getenv("FEED_NO_BF16")) return 0; /* tests: the fallback path on any CPU */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

void feed_engine_bf16_fallback_note(void) {
    static int said;
    if (said++) return;
    fprintf(stderr, "feed_mpi: note: precision bf16 asked for, but this CPU (oneDNN ISA %s) has no bf16 kernels "
                    "(AVX512-BF16 or AMX): computing in fp32\n", feed_engine_isa());
}

const char *feed_engine_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}
