/* modes.c - run.mode -> the function that runs it (order of enum feed_mode). */
#include "feed/check.h"
#include "feed/modes.h"

static const feed_mode_fn mode_table[] = {
    [FEED_MODE_SCRATCH] = feed_mode_scratch,
    [FEED_MODE_PFEED] = feed_mode_pfeed,
};

int feed_run_mode(const feed_run_ctx *ctx) {
    int m = ctx->cfg->run.mode;
    FEED_CHECK(m >= 0 && m < (int)(sizeof mode_table / sizeof mode_table[0]) && mode_table[m],
               "this is a bug", "no function for mode %d", m);
    return mode_table[m](ctx);
}
