/* mode_scratch.c - `run.mode = scratch`: every rank trains its own network with cross-entropy
 * only, rank r with seed run.seed + r, so one job produces the N teachers FEED needs.
 * Rank r writes <run.dir>/teacher<r>_e*_s*.h5 checkpoints, teacher<r>_metrics.jsonl, and
 * <run.dir>/teacher_<r>.h5 when it finishes.
 * With train.replicas = P each network trains on P ranks as data-parallel replicas
 * (replicas.h): ranks mP .. mP+P-1 train network m (seed run.seed + m, files teacher<m>...). */
#include <stdio.h>

#include "feed/check.h"
#include "feed/modes.h"
#include "feed/train.h"

int feed_mode_scratch(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    int P = cfg->train.replicas, m = ctx->rank / P; /* the rank count is a multiple of P (modes.c) */
    MPI_Comm replicas = MPI_COMM_NULL;
    if (P > 1) CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, m, ctx->rank, &replicas));
    char prefix[64], final_path[4200];
    snprintf(prefix, sizeof prefix, "teacher%d", m);
    snprintf(final_path, sizeof final_path, "%s/teacher_%d.h5", cfg->run.dir, m);
    feed_train_job job = {
        .cfg = cfg,
        .comm = MPI_COMM_WORLD,
        .rank = ctx->rank,
        .size = ctx->size,
        .seed = (uint64_t)cfg->run.seed + (uint64_t)m,
        .prefix = prefix,
        .final_path = final_path,
        .replicas = replicas,
        .sync_bn = cfg->train.sync_bn,
    };
    int rc = feed_train_run(&job);
    if (replicas != MPI_COMM_NULL) CHECK_MPI(MPI_Comm_free(&replicas));
    return rc;
}
