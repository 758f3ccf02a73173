/* pfeed_student.c - rank 0 of `run.mode = pfeed`: the student trainer plus one NTL per
 * teacher and the FEED loss, wired into the training loop as a feed_train_extension.
 *
 * The teachers' maps come from the teacher ranks over MPI, or - with feed.local_teachers -
 * from teacher networks in this process (a one-rank job: small machines, and the reference
 * the MPI pipeline is tested against bit for bit). */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/feature_transport.h"
#include "feed/pfeed.h"
#include "feed/train.h"

typedef struct {
    const feed_config *cfg;
    int n_teachers;
    int dims_s[4];          /* student final map (B, C_s, H, W) */
    int (*dims_t)[4];       /* [N] teacher final maps (B, C_t, H, W) */
    feed_net **ntl;         /* [N] */
    float **ntl_momentum;   /* [N] flat, the NTL's parameter layout */
    float *dxs;             /* (B, C_s, H, W) gradient into the student's final map */
    float *dus;             /* (B, C_t max, H, W) gradient into an NTL's output */
    feed_feature_receiver *rx;
    /* feed.local_teachers: the teachers run here, on their own copy of the loader */
    bool local;
    feed_net **teacher;     /* [N] */
    feed_dataset *ds;
    feed_loader *ld;
    float *x;               /* (B, C, H, W) */
    int32_t *y;
    int64_t *idx;
    int64_t local_step;     /* step whose teacher maps are computed */
    int *teacher_ranks;
    size_t *elems;
    float scale;            /* beta, or beta / N */
    /* per-epoch accumulators */
    double *loss_sum, *wait_sum;
    int64_t steps;
    char (*names)[32];      /* "feed_loss_n", "wait_s_n" */
} pfeed_student;

/* Local teachers: their networks and a loader of their own (the student's configuration). */
static void local_teachers_setup(pfeed_student *p, int *all) {
    const feed_config *cfg = p->cfg;
    p->ds = feed_dataset_open(cfg->data.path);
    int B = cfg->train.batch;
    feed_loader_config lc = feed_train_loader_config(cfg, B, (uint64_t)cfg->run.seed);
    lc.prefetch_depth = 0;
    p->ld = feed_loader_create(p->ds, &lc);
    p->x = feed_xaligned(sizeof(float) * (size_t)B * p->ds->channels * p->ds->height * p->ds->width, "input batch");
    p->y = feed_xmalloc(sizeof(int32_t) * (size_t)B, "labels");
    p->idx = feed_xmalloc(sizeof(int64_t) * (size_t)B, "indices");
    p->teacher = feed_xcalloc((size_t)p->n_teachers, sizeof *p->teacher, "teachers");
    for (int n = 0; n < p->n_teachers; n++) {
        p->teacher[n] = feed_pfeed_load_teacher(cfg->feed.teachers.v[n], p->ds, cfg->data.path, B);
        feed_net_tap(p->teacher[n], "final", all + 4 * (n + 1));
    }
    p->local_step = -1;
}

/* Teacher k's map of `step` computed here; the batch must be the student's. */
static const float *local_teacher_map(pfeed_student *p, int k, int64_t step, uint64_t batch_id) {
    if (step != p->local_step) {
        int64_t steps = feed_loader_steps_per_epoch(p->ld);
        int got = feed_loader_batch(p->ld, step / steps, step % steps, p->x, p->y);
        feed_loader_batch_indices(p->ld, step / steps, step % steps, p->idx);
        FEED_CHECK(feed_batch_id(p->idx, got) == batch_id, "this is a bug",
                   "local teachers computed another minibatch than the student at step %lld", (long long)step);
        for (int n = 0; n < p->n_teachers; n++) feed_net_forward(p->teacher[n], p->x, 0);
        p->local_step = step;
    }
    return feed_net_tap(p->teacher[k], "final", NULL);
}

/* Every rank's (or local teacher's) final-map shape at the student; check H x W. */
static void gather_shapes(pfeed_student *p, feed_net *student) {
    int size = p->n_teachers + 1;
    int *all = feed_xmalloc(sizeof(int) * 4 * size, "shapes");
    FEED_CHECK(feed_net_tap(student, "final", p->dims_s), "this is a bug", "student has no 'final' tap");
    if (p->local)
        local_teachers_setup(p, all);
    else
        CHECK_MPI(MPI_Gather(p->dims_s, 4, MPI_INT, all, 4, MPI_INT, 0, MPI_COMM_WORLD));
    for (int n = 1; n < size; n++) {
        memcpy(p->dims_t[n - 1], all + 4 * n, sizeof(int) * 4);
        const int *d = p->dims_t[n - 1];
        if (d[0] != p->dims_s[0] || d[2] != p->dims_s[2] || d[3] != p->dims_s[3])
            FEED_INPUT_ERROR("teachers may have other channels than the student, but the same "
                             "final map height and width (and the same batch)",
                             "teacher %d (%s) has a final map of %dx%dx%dx%d, the student %dx%dx%dx%d",
                             n, p->cfg->feed.teachers.v[n - 1], d[0], d[1], d[2], d[3], p->dims_s[0],
                             p->dims_s[1], p->dims_s[2], p->dims_s[3]);
    }
    free(all);
}

static void on_setup(void *self, feed_net *student, feed_sgd *sgd) {
    pfeed_student *p = self;
    gather_shapes(p, student);
    size_t max_t = 0;
    for (int n = 0; n < p->n_teachers; n++) {
        const int *d = p->dims_t[n];
        /* a seed per NTL derived from the run's, so NTLs differ from each other */
        p->ntl[n] = feed_ntl_build(d[0], p->dims_s[1], d[1], d[2], d[3], p->cfg->feed.ntl_bn,
                                   (uint64_t)p->cfg->run.seed * 1000003u + 17u * (uint64_t)(n + 1));
        size_t nf;
        float *params = feed_net_params(p->ntl[n], &nf);
        float *grads = feed_net_grads(p->ntl[n], &nf);
        p->ntl_momentum[n] = feed_xaligned(nf * sizeof(float), "NTL momentum");
        memset(p->ntl_momentum[n], 0, nf * sizeof(float));
        for (int i = 0; i < feed_net_num_entries(p->ntl[n]); i++) {
            const feed_param_info *e = feed_net_entry(p->ntl[n], i);
            if (e->kind == FEED_PARAM)
                feed_sgd_add_param(sgd, params + e->offset, grads + e->offset,
                                   p->ntl_momentum[n] + e->offset, e->len, e->decay);
        }
        p->elems[n] = (size_t)d[0] * d[1] * d[2] * d[3];
        max_t = p->elems[n] > max_t ? p->elems[n] : max_t;
        p->teacher_ranks[n] = n + 1;
    }
    size_t ns = (size_t)p->dims_s[0] * p->dims_s[1] * p->dims_s[2] * p->dims_s[3];
    p->dxs = feed_xaligned(ns * sizeof(float), "dL/dx^S");
    p->dus = feed_xaligned(max_t * sizeof(float), "dL/dNTL");
}

static void group_name(char *buf, size_t cap, const char *what, int n) { snprintf(buf, cap, "%s/%d", what, n); }

static void on_save(void *self, feed_ckpt_writer *w) {
    pfeed_student *p = self;
    for (int n = 0; n < p->n_teachers; n++) {
        char g[64];
        group_name(g, sizeof g, "ntl", n);
        feed_net_save(w, p->ntl[n], g);
        group_name(g, sizeof g, "optim/ntl", n);
        feed_net_save_flat(w, p->ntl[n], p->ntl_momentum[n], g);
    }
    feed_ckpt_put_i64(w, "train", "num_teachers", p->n_teachers);
}

static void on_restore(void *self, const feed_ckpt *ck) {
    pfeed_student *p = self;
    int64_t n_saved = feed_ckpt_read_i64(ck, "train", "num_teachers");
    if (n_saved != p->n_teachers)
        FEED_INPUT_ERROR("resume with the same feed.teachers, or start fresh (checkpoint.resume=none)",
                         "checkpoint %s has NTLs for %lld teachers, the config lists %d",
                         feed_ckpt_path(ck), (long long)n_saved, p->n_teachers);
    for (int n = 0; n < p->n_teachers; n++) {
        char g[64];
        group_name(g, sizeof g, "ntl", n);
        feed_net_load(ck, p->ntl[n], g);
        group_name(g, sizeof g, "optim/ntl", n);
        feed_net_load_flat(ck, p->ntl[n], p->ntl_momentum[n], g);
    }
}

static void on_start(void *self, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    pfeed_student *p = self;
    if (p->local) return;
    long long start[3] = {epoch, step_in_epoch, global_step};
    CHECK_MPI(MPI_Bcast(start, 3, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    feed_feature_receiver_config rc = {
        .comm = MPI_COMM_WORLD,
        .num_teachers = p->n_teachers,
        .teacher_ranks = p->teacher_ranks,
        .elems_per_step = p->elems,
        .dtype = (feed_wire_dtype)p->cfg->feed.transfer,
        .credits = p->cfg->feed.credits,
        .first_step = global_step,
        .timeout_s = p->cfg->feed.teacher_timeout,
    };
    p->rx = feed_feature_receiver_create(&rc);
}

static void on_feature_loss(void *self, feed_net *student, int64_t step, const int64_t *idx, int n) {
    pfeed_student *p = self;
    uint64_t batch_id = feed_batch_id(idx, n);
    const float *xs = feed_net_tap(student, "final", NULL); /* (B, C_s, H, W) */
    size_t ns = (size_t)p->dims_s[0] * p->dims_s[1] * p->dims_s[2] * p->dims_s[3];
    memset(p->dxs, 0, ns * sizeof(float));
    for (int k = 0; k < p->n_teachers; k++) {
        double waited = 0;
        const float *xt = p->local ? local_teacher_map(p, k, step, batch_id) /* (B, C_t, H, W) */
                                   : feed_feature_receiver_wait(p->rx, k + 1, step, batch_id, &waited);
        p->loss_sum[k] += feed_ntl_feed_term(p->ntl[k], xs, xt, p->dims_t[k][0], p->elems[k], ns, p->scale,
                                             p->dus, p->dxs);
        p->wait_sum[k] += waited;
    }
    if (!p->local) feed_feature_receiver_release(p->rx, step);
    feed_net_tap_add_grad(student, "final", p->dxs);
    p->steps++;
}

static int on_epoch_metrics(void *self, const char **names, double *values, int max) {
    pfeed_student *p = self;
    int m = 0;
    for (int k = 0; k < p->n_teachers && m + 2 <= max; k++) {
        names[m] = p->names[2 * k];
        values[m++] = p->steps ? p->loss_sum[k] / (double)p->steps : 0;
        names[m] = p->names[2 * k + 1];
        values[m++] = p->wait_sum[k];
        p->loss_sum[k] = p->wait_sum[k] = 0;
    }
    p->steps = 0;
    return m;
}

static void on_finish(void *self) {
    pfeed_student *p = self;
    if (!p->rx) return;
    feed_feature_receiver_finish(p->rx);
    feed_feature_receiver_destroy(p->rx);
    p->rx = NULL;
}

int feed_pfeed_student(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    pfeed_student p = {.cfg = cfg, .n_teachers = cfg->feed.teachers.n, .local = cfg->feed.local_teachers};
    int N = p.n_teachers;
    p.dims_t = feed_xcalloc((size_t)N, sizeof *p.dims_t, "teacher shapes");
    p.ntl = feed_xcalloc((size_t)N, sizeof *p.ntl, "NTLs");
    p.ntl_momentum = feed_xcalloc((size_t)N, sizeof *p.ntl_momentum, "NTL momentum");
    p.teacher_ranks = feed_xcalloc((size_t)N, sizeof *p.teacher_ranks, "teacher ranks");
    p.elems = feed_xcalloc((size_t)N, sizeof *p.elems, "teacher map sizes");
    p.loss_sum = feed_xcalloc((size_t)N, sizeof(double), "loss sums");
    p.wait_sum = feed_xcalloc((size_t)N, sizeof(double), "wait sums");
    p.names = feed_xcalloc((size_t)N * 2, sizeof *p.names, "metric names");
    for (int k = 0; k < N; k++) {
        snprintf(p.names[2 * k], sizeof p.names[0], "feed_loss_%d", k + 1);
        snprintf(p.names[2 * k + 1], sizeof p.names[0], "wait_s_%d", k + 1);
    }
    p.scale = (float)(cfg->feed.beta_reduce == FEED_BETA_MEAN ? cfg->feed.beta / N : cfg->feed.beta);
    feed_train_extension ext = {
        .self = &p,
        .setup = on_setup,
        .save = on_save,
        .restore = on_restore,
        .start = on_start,
        .feature_loss = on_feature_loss,
        .epoch_metrics = on_epoch_metrics,
        .finish = on_finish,
    };
    char final_path[4200];
    snprintf(final_path, sizeof final_path, "%s/student.h5", cfg->run.dir);
    feed_train_job job = {
        .cfg = cfg,
        .comm = MPI_COMM_SELF, /* the student trains alone; teachers follow its schedule */
        .rank = 0,
        .size = 1,
        .seed = (uint64_t)cfg->run.seed,
        .prefix = "student",
        .final_path = final_path,
        .ext = &ext,
    };
    int rc = feed_train_run(&job);
    for (int k = 0; k < N; k++) {
        feed_net_free(p.ntl[k]);
        free(p.ntl_momentum[k]);
        if (p.teacher) feed_net_free(p.teacher[k]);
    }
    free(p.teacher), free(p.x), free(p.y), free(p.idx);
    feed_loader_destroy(p.ld);
    feed_dataset_close(p.ds);
    free(p.dims_t), free(p.ntl), free(p.ntl_momentum), free(p.teacher_ranks), free(p.elems);
    free(p.loss_sum), free(p.wait_sum), free(p.names), free(p.dxs), free(p.dus);
    return rc;
}
