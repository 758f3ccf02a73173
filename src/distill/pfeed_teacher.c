/* pfeed_teacher.c - rank n >= 1 of `run.mode = pfeed`: frozen teacher n computes the
 * student's minibatches itself (same loader, same seed) and streams its final feature map
 * of every step to the student. Stateless: on resume it starts where the student says. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/feature_transport.h"
#include "feed/pfeed.h"
#include "feed/signals.h"
#include "feed/train.h"

int feed_pfeed_teacher(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    int n = ctx->rank; /* teacher n of 1..N */
    const char *path = cfg->feed.teachers.v[n - 1];
    /* SIGUSR1/SIGTERM reach every rank under srun/mpirun: the student acts on them and tells
     * the teachers to stop; here they must only not end the process. */
    feed_signals_install();

    feed_dataset *ds = feed_dataset_open(cfg->data.path);
    int B = cfg->train.batch;
    feed_loader_config lc = feed_train_loader_config(cfg, B, (uint64_t)cfg->run.seed);
    feed_loader *ld = feed_loader_create(ds, &lc);

    feed_net *net = feed_pfeed_load_teacher(path, ds, cfg->data.path, B);
    int dims[4]; /* (B, C_t, H, W) */
    feed_net_tap(net, "final", dims);
    CHECK_MPI(MPI_Gather(dims, 4, MPI_INT, NULL, 4, MPI_INT, 0, MPI_COMM_WORLD));
    long long start[3]; /* epoch, step in epoch, global step: the student's starting point */
    CHECK_MPI(MPI_Bcast(start, 3, MPI_LONG_LONG, 0, MPI_COMM_WORLD));

    size_t elems = (size_t)dims[0] * dims[1] * dims[2] * dims[3];
    feed_feature_sender_config sc = {
        .comm = MPI_COMM_WORLD,
        .student_rank = 0,
        .teacher_index = n,
        .elems_per_step = elems,
        .dtype = (feed_wire_dtype)cfg->feed.transfer,
        .credits = cfg->feed.credits,
        .first_step = start[2],
        /* The student pauses for evaluation and checkpoints; if it dies, MPI ends the job. */
        .timeout_s = 0,
    };
    feed_feature_sender *tx = feed_feature_sender_create(&sc);

    float *x = feed_xaligned(sizeof(float) * (size_t)B * ds->channels * ds->height * ds->width, "input batch");
    int32_t *y = feed_xmalloc(sizeof(int32_t) * (size_t)B, "labels");
    int64_t *idx = feed_xmalloc(sizeof(int64_t) * (size_t)B, "indices");
    int64_t steps = feed_loader_steps_per_epoch(ld), step = start[2];
    for (int64_t epoch = start[0], s = start[1]; epoch < cfg->train.epochs; epoch++, s = 0) {
        for (; s < steps; s++, step++) {
            float *map = feed_feature_sender_acquire(tx, step);
            if (!map) goto stream_ended;
            int got = feed_loader_batch(ld, epoch, s, x, y);
            feed_loader_batch_indices(ld, epoch, s, idx);
            feed_net_forward(net, x, 0);
            memcpy(map, feed_net_tap(net, "final", NULL), elems * sizeof(float));
            if (!feed_feature_sender_post(tx, step, feed_batch_id(idx, got))) goto stream_ended;
        }
    }
stream_ended:
    feed_feature_sender_finish(tx);
    feed_feature_sender_destroy(tx);
    free(x), free(y), free(idx);
    feed_net_free(net);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
    return 0;
}
