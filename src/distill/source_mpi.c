/* source_mpi.c - teachers on ranks 1..N (teacher_source.h, distill.source = mpi): each teacher
 * rank (teacher_rank.c) computes the student's minibatches itself and streams its payloads
 * over the feature transport; the student only waits for them.
 *
 * Set-up, collective with the teacher ranks on MPI_COMM_WORLD:
 *   create:  MPI_Gather of every teacher's layout at rank 0 (teacher ranks may first train
 *            FT's paraphraser, so this can take a while)
 *   start:   MPI_Bcast of the student's starting point {epoch, step in epoch, global step},
 *            then both sides create the transport for that first step. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/feature_transport.h"
#include "feed/teacher_source.h"

typedef struct {
    feed_teacher_source base;
    const feed_config *cfg;
    int *ranks;    /* [N] rank of teacher k: k + 1 */
    size_t *elems; /* [N] payload floats per step */
    feed_feature_receiver *rx;
} mpi_source;

static void mpi_start(feed_teacher_source *s, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    mpi_source *p = (mpi_source *)s;
    long long start[3] = {epoch, step_in_epoch, global_step};
    CHECK_MPI(MPI_Bcast(start, 3, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    feed_feature_receiver_config rc = {
        .comm = MPI_COMM_WORLD,
        .num_teachers = s->n_teachers,
        .teacher_ranks = p->ranks,
        .elems_per_step = p->elems,
        .dtype = (feed_wire_dtype)p->cfg->transport.dtype,
        .credits = p->cfg->transport.credits,
        .first_step = global_step,
        .timeout_s = p->cfg->transport.timeout,
    };
    p->rx = feed_feature_receiver_create(&rc);
}

static const float *mpi_get(feed_teacher_source *s, int k, int64_t step, uint64_t batch_id, double *waited_s) {
    return feed_feature_receiver_wait(((mpi_source *)s)->rx, k + 1, step, batch_id, waited_s);
}

static void mpi_release(feed_teacher_source *s, int64_t step) {
    feed_feature_receiver_release(((mpi_source *)s)->rx, step);
}

static void mpi_finish(feed_teacher_source *s) {
    mpi_source *p = (mpi_source *)s;
    if (!p->rx) return;
    feed_feature_receiver_finish(p->rx);
    feed_feature_receiver_destroy(p->rx);
    p->rx = NULL;
}

static void mpi_destroy(feed_teacher_source *s) {
    mpi_source *p = (mpi_source *)s;
    mpi_finish(s);
    free(p->ranks), free(p->elems), free(s->layouts), free(p);
}

static const feed_teacher_source_ops mpi_ops = {mpi_start, mpi_get, mpi_release, mpi_finish, mpi_destroy};

feed_teacher_source *feed_source_mpi_create(const feed_config *cfg, int outputs, int batch) {
    mpi_source *p = feed_xcalloc(1, sizeof *p, "MPI teacher source");
    int N = cfg->distill.teachers.n;
    p->base = (feed_teacher_source){.ops = &mpi_ops, .n_teachers = N};
    p->cfg = cfg;
    feed_teacher_layout *all = feed_xcalloc((size_t)N + 1, sizeof *all, "teacher layouts");
    feed_teacher_layout mine = {.outputs = outputs, .batch = batch}; /* rank 0 contributes a placeholder */
    CHECK_MPI(MPI_Gather(&mine, FEED_TEACHER_LAYOUT_INTS, MPI_INT, all, FEED_TEACHER_LAYOUT_INTS, MPI_INT, 0,
                         MPI_COMM_WORLD));
    p->base.layouts = feed_xcalloc((size_t)N, sizeof *p->base.layouts, "teacher layouts");
    p->ranks = feed_xcalloc((size_t)N, sizeof *p->ranks, "teacher ranks");
    p->elems = feed_xcalloc((size_t)N, sizeof *p->elems, "teacher payload sizes");
    for (int k = 0; k < N; k++) {
        p->base.layouts[k] = all[k + 1];
        FEED_CHECK(all[k + 1].outputs == outputs && all[k + 1].batch == batch, "this is a bug",
                   "teacher rank %d computes outputs %#x for batch %d, the student expects %#x for %d", k + 1,
                   (unsigned)all[k + 1].outputs, all[k + 1].batch, (unsigned)outputs, batch);
        p->ranks[k] = k + 1;
        p->elems[k] = feed_teacher_payload_elems(&all[k + 1]);
    }
    free(all);
    return &p->base;
}
