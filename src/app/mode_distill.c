/* mode_distill.c - `run.mode = distill` and its short form `pfeed` (include/feed/distill.h):
 * ranks 0..P-1 train the student (P = distill.student_ranks data-parallel replicas, usually
 * one); with distill.source = mpi rank P-1+n hosts teacher n. The rank count was checked
 * before (feed_run_mode). */
#include "feed/check.h"
#include "feed/distill.h"
#include "feed/modes.h"

int feed_mode_distill(const feed_run_ctx *ctx) {
    int P = ctx->cfg->distill.student_ranks;
    bool student = ctx->rank < P;
    MPI_Comm replicas = MPI_COMM_NULL; /* collective over every rank, teachers included */
    CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, student ? 0 : MPI_UNDEFINED, ctx->rank, &replicas));
    int rc = student ? feed_distill_student_rank(ctx, replicas) : feed_distill_teacher_rank(ctx);
    if (replicas != MPI_COMM_NULL) CHECK_MPI(MPI_Comm_free(&replicas));
    return rc;
}
