/* mode_distill.c - `run.mode = distill` and its short form `pfeed` (include/feed/distill.h):
 * rank 0 trains the student; with distill.source = mpi rank n hosts teacher n. The rank
 * count was checked before (feed_run_mode). */
#include "feed/distill.h"
#include "feed/modes.h"

int feed_mode_distill(const feed_run_ctx *ctx) {
    return ctx->rank == 0 ? feed_distill_student_rank(ctx) : feed_distill_teacher_rank(ctx);
}
