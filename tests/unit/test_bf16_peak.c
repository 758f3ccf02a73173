/* test_bf16_peak.c - the bf16 peak measurement (feed_bf16_peak_gflops): its CPU detection
 * agrees with oneDNN's (feed_engine_bf16_supported: bf16 kernels exactly where a bf16 peak is
 * measured), the figure is positive and finite, and both peaks are printed. Speeds are not
 * asserted (other processes share the cores): feed_bench reports them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "feed/engine.h"
#include "feed/fma_peak.h"
#include "feed_test.h"

int main(void) {
    const char *bf16_isa = NULL, *fp32_isa = NULL;
    double bf16 = feed_bf16_peak_gflops(1, &bf16_isa);
    double fp32 = feed_fma_peak_gflops(1, &fp32_isa);
    printf("test_bf16_peak: 1 thread: bf16 %.1f GFLOP/s (%s), fp32 FMA %.1f GFLOP/s (%s); oneDNN ISA %s\n", bf16,
           bf16_isa, fp32, fp32_isa, feed_engine_isa());
    EXPECT_INT_EQ(bf16 > 0.0, feed_engine_bf16_supported());
    if (bf16 > 0.0) {
        EXPECT(strcmp(bf16_isa, "avx512_bf16") == 0 || strcmp(bf16_isa, "amx_bf16") == 0);
        EXPECT(isfinite(bf16));
    } else {
        EXPECT(strcmp(bf16_isa, "none") == 0);
    }
    return feed_test_finish("test_bf16_peak");
}
