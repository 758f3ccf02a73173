/* source_mpi.c - teachers on their own ranks (teacher_source.h, distill.source = mpi): each
 * teacher rank (teacher_rank.c) computes the student's minibatches itself and streams its
 * payloads over the feature transport; the student only waits for them. With P student
 * replicas (distill.student_ranks) replica r talks to the teachers over links[r] and gets the
 * rows of its shard.
 *
 * Set-up, collective with the teacher ranks on MPI_COMM_WORLD:
 *   create:  the replica links (P > 1), then MPI_Allgather of every rank's layout (teacher
 *            ranks may first train FT's paraphraser, so this can take a while)
 *   start:   MPI_Bcast of the student's starting point {epoch, step in epoch, global step}
 *            from rank 0, then both sides create the transport for that first step. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/feature_transport.h"
#include "feed/teacher_source.h"

typedef struct {
    feed_teacher_source base;
    const feed_config *cfg;
    int replica, replicas;
    MPI_Comm *links; /* [replicas]; ours is links[replica] */
    int *ranks;      /* [N] rank of teacher k in our link: k + 1 */
    size_t *elems;   /* [N] payload floats per step */
    feed_feature_receiver *rx;
} mpi_source;

static void mpi_start(feed_teacher_source *s, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    mpi_source *p = (mpi_source *)s;
    long long start[3] = {epoch, step_in_epoch, global_step};
    CHECK_MPI(MPI_Bcast(start, 3, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    feed_feature_receiver_config rc = {
        .comm = p->links[p->replica],
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
    feed_replica_links_free(p->replicas, p->links);
    free(p->links), free(p->ranks), free(p->elems), free(s->layouts), free(p);
}

static const feed_teacher_source_ops mpi_ops = {mpi_start, mpi_get, mpi_release, mpi_finish, mpi_destroy};

void feed_replica_links(int P, MPI_Comm *links) {
    if (P == 1) {
        links[0] = MPI_COMM_WORLD;
        return;
    }
    int rank;
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    for (int r = 0; r < P; r++)
        CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, rank == r || rank >= P ? 0 : MPI_UNDEFINED, rank, &links[r]));
}

void feed_replica_links_free(int P, MPI_Comm *links) {
    if (P == 1 || !links) return;
    for (int r = 0; r < P; r++)
        if (links[r] != MPI_COMM_NULL) CHECK_MPI(MPI_Comm_free(&links[r]));
}

feed_teacher_source *feed_source_mpi_create(const feed_config *cfg, int outputs, int batch, int replica, int replicas) {
    mpi_source *p = feed_xcalloc(1, sizeof *p, "MPI teacher source");
    int N = cfg->distill.teachers.n, P = replicas;
    p->base = (feed_teacher_source){.ops = &mpi_ops, .n_teachers = N};
    p->cfg = cfg;
    p->replica = replica, p->replicas = P;
    p->links = feed_xcalloc((size_t)P, sizeof *p->links, "replica links");
    feed_replica_links(P, p->links);
    feed_teacher_layout *all = feed_xcalloc((size_t)(N + P), sizeof *all, "teacher layouts");
    feed_teacher_layout mine = {.outputs = outputs, .batch = batch}; /* student ranks contribute a placeholder */
    CHECK_MPI(MPI_Allgather(&mine, FEED_TEACHER_LAYOUT_INTS, MPI_INT, all, FEED_TEACHER_LAYOUT_INTS, MPI_INT,
                            MPI_COMM_WORLD));
    p->base.layouts = feed_xcalloc((size_t)N, sizeof *p->base.layouts, "teacher layouts");
    p->ranks = feed_xcalloc((size_t)N, sizeof *p->ranks, "teacher ranks");
    p->elems = feed_xcalloc((size_t)N, sizeof *p->elems, "teacher payload sizes");
    for (int k = 0; k < N; k++) {
        feed_teacher_layout *t = &all[P + k]; /* teacher k + 1 on world rank P + k, for the whole minibatch */
        FEED_CHECK(t->outputs == outputs && t->batch == batch * P, "this is a bug",
                   "teacher rank %d computes outputs %#x for batch %d, the student expects %#x for %d x %d replicas",
                   P + k, (unsigned)t->outputs, t->batch, (unsigned)outputs, batch, P);
        p->base.layouts[k] = *t;
        p->base.layouts[k].batch = batch; /* what reaches this replica: its shard's rows */
        p->ranks[k] = k + 1;
        p->elems[k] = feed_teacher_payload_elems(&p->base.layouts[k]);
    }
    free(all);
    return &p->base;
}
