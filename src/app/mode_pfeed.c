/* mode_pfeed.c - `run.mode = pfeed`: rank 0 is the student, rank n hosts teacher n
 * (src/distill/). The rank count must be N+1; every rank knows both, so a wrong count is
 * reported once (by rank 0) and all ranks exit 2 before any work. */
#include <stdio.h>

#include "feed/check.h"
#include "feed/modes.h"
#include "feed/pfeed.h"

int feed_mode_pfeed(const feed_run_ctx *ctx) {
    int n = ctx->cfg->feed.teachers.n;
    if (ctx->cfg->feed.local_teachers) {
        if (ctx->size != 1) {
            if (ctx->rank == 0)
                fprintf(stderr, "feed_mpi: error: feed.local_teachers = true runs student and teachers "
                                "in one process; this job has %d ranks\n  hint: run it without mpirun, "
                                "or with -np 1\n", ctx->size);
            feed_exit_collective(FEED_EXIT_USAGE);
        }
        return feed_pfeed_student(ctx);
    }
    if (ctx->size != n + 1) {
        if (ctx->rank == 0) {
            fprintf(stderr,
                    "feed_mpi: error: run.mode = pfeed with %d teacher%s needs %d MPI ranks "
                    "(one student + one per teacher); this job has %d\n"
                    "  hint: mpirun -np %d feed_mpi %s\n",
                    n, n > 1 ? "s" : "", n + 1, ctx->size, n + 1, ctx->cfg->file);
            fflush(stderr);
        }
        feed_exit_collective(FEED_EXIT_USAGE);
    }
    return ctx->rank == 0 ? feed_pfeed_student(ctx) : feed_pfeed_teacher(ctx);
}
