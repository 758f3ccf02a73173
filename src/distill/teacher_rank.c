/* teacher_rank.c - rank n >= 1 of a distill job with distill.source = mpi: frozen teacher n
 * computes the student's minibatches itself (same loader, same seed) and streams the payload
 * the job's terms need (teacher_outputs.h) for every step. Stateless: on resume it starts
 * where the student says. The student's side is source_mpi.c. */
#include <mpi.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/distill_term.h"
#include "feed/feature_transport.h"
#include "feed/signals.h"
#include "feed/teacher.h"
#include "feed/train.h"

int feed_distill_teacher_rank(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    int P = cfg->distill.student_ranks; /* student replicas on ranks 0..P-1 */
    int n = ctx->rank - P + 1;          /* teacher n of 1..N */
    /* SIGUSR1/SIGTERM reach every rank under srun/mpirun: the student acts on them and tells
     * the teachers to stop; here they must only not end the process. */
    feed_signals_install();

    feed_dataset *ds = feed_dataset_open(cfg->data.path);
    int B = cfg->train.batch; /* the whole minibatch; replica r gets rows r, r + P, ... */
    feed_loader_config lc = feed_train_loader_config(cfg, B, (uint64_t)cfg->run.seed);
    feed_loader *ld = feed_loader_create(ds, &lc);
    feed_teacher *teacher = feed_teacher_open(cfg, n - 1, ds, feed_terms_outputs(cfg), B);
    feed_teacher_layout layout = *feed_teacher_get_layout(teacher), shard = layout;
    shard.batch = B / P;
    MPI_Comm *links = feed_xcalloc((size_t)P, sizeof *links, "replica links");
    feed_replica_links(P, links);
    feed_teacher_layout *all = feed_xcalloc((size_t)ctx->size, sizeof *all, "teacher layouts");
    CHECK_MPI(MPI_Allgather(&layout, FEED_TEACHER_LAYOUT_INTS, MPI_INT, all, FEED_TEACHER_LAYOUT_INTS, MPI_INT,
                            MPI_COMM_WORLD));
    free(all);
    long long start[3]; /* epoch, step in epoch, global step: the student's starting point */
    CHECK_MPI(MPI_Bcast(start, 3, MPI_LONG_LONG, 0, MPI_COMM_WORLD));

    /* one stream per replica, created in replica order (each collective over its link) */
    feed_feature_sender **tx = feed_xcalloc((size_t)P, sizeof *tx, "feature senders");
    for (int r = 0; r < P; r++) {
        feed_feature_sender_config sc = {
            .comm = links[r],
            .student_rank = 0,
            .teacher_index = n,
            .elems_per_step = feed_teacher_payload_elems(&shard),
            .dtype = (feed_wire_dtype)cfg->transport.dtype,
            .credits = cfg->transport.credits,
            .first_step = start[2],
            /* The student pauses for evaluation and checkpoints; if it dies, MPI ends the job. */
            .timeout_s = 0,
        };
        tx[r] = feed_feature_sender_create(&sc);
    }

    float *x = feed_xaligned(sizeof(float) * (size_t)B * ds->channels * ds->height * ds->width, "input batch");
    int32_t *y = feed_xmalloc(sizeof(int32_t) * (size_t)B, "labels");
    int64_t *idx = feed_xmalloc(sizeof(int64_t) * (size_t)B, "indices");
    int64_t *shard_idx = feed_xmalloc(sizeof(int64_t) * (size_t)B, "indices");
    /* P > 1: the whole minibatch's payload, cut into the replicas' send buffers */
    float *whole = P > 1 ? feed_xaligned(sizeof(float) * feed_teacher_payload_elems(&layout), "teacher payload") : NULL;
    int64_t steps = feed_loader_steps_per_epoch(ld), step = start[2];
    /* a bf16 teacher's map onto a bf16 wire as it is, without an fp32 pass */
    const int direct = P == 1 && cfg->transport.dtype == FEED_WIRE_BF16 && feed_teacher_direct_bf16(teacher);
    for (int64_t epoch = start[0], s = start[1]; epoch < cfg->train.epochs; epoch++, s = 0) {
        for (; s < steps; s++, step++) {
            void *payload = direct ? feed_feature_sender_acquire_wire(tx[0], step)
                            : P == 1 ? (void *)feed_feature_sender_acquire(tx[0], step) : (void *)whole;
            if (!payload) goto stream_ended;
            int got = feed_loader_batch(ld, epoch, s, x, y);
            feed_loader_batch_indices(ld, epoch, s, idx);
            if (direct)
                feed_teacher_compute_bf16(teacher, x, payload);
            else
                feed_teacher_compute(teacher, x, payload);
            if (P == 1) {
                if (!feed_feature_sender_post(tx[0], step, feed_batch_id(idx, got))) goto stream_ended;
                continue;
            }
            for (int r = 0; r < P; r++) {
                float *buf = feed_feature_sender_acquire(tx[r], step);
                if (!buf) goto stream_ended;
                feed_teacher_payload_shard(&layout, whole, r, P, buf);
                int b = 0;
                for (int j = r; j < got; j += P) shard_idx[b++] = idx[j];
                if (!feed_feature_sender_post(tx[r], step, feed_batch_id(shard_idx, b))) goto stream_ended;
            }
        }
    }
stream_ended:
    for (int r = 0; r < P; r++) feed_feature_sender_finish(tx[r]);
    for (int r = 0; r < P; r++) feed_feature_sender_destroy(tx[r]);
    feed_replica_links_free(P, links);
    free(tx), free(links), free(x), free(y), free(idx), free(shard_idx), free(whole);
    feed_teacher_free(teacher);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
    return 0;
}
