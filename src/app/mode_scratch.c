/* mode_scratch.c - `run.mode = scratch`: every rank trains its own network with cross-entropy
 * only, rank r with seed run.seed + r, so one job produces the N teachers FEED needs.
 * Rank r writes <run.dir>/teacher<r>_e*_s*.h5 checkpoints, teacher<r>_metrics.jsonl, and
 * <run.dir>/teacher_<r>.h5 when it finishes. */
#include <stdio.h>

#include "feed/modes.h"
#include "feed/train.h"

int feed_mode_scratch(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    char prefix[64], final_path[4200];
    snprintf(prefix, sizeof prefix, "teacher%d", ctx->rank);
    snprintf(final_path, sizeof final_path, "%s/teacher_%d.h5", cfg->run.dir, ctx->rank);
    feed_train_job job = {
        .cfg = cfg,
        .comm = MPI_COMM_WORLD,
        .rank = ctx->rank,
        .size = ctx->size,
        .seed = (uint64_t)cfg->run.seed + (uint64_t)ctx->rank,
        .prefix = prefix,
        .final_path = final_path,
    };
    return feed_train_run(&job);
}
