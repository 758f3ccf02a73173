/* student.c - rank 0 of a distill job: the trainer (train.h) plus a feed_train_extension that
 * gets the teachers' payloads of every minibatch from the teacher source and runs the job's
 * terms on them. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/distill_term.h"
#include "feed/teacher.h"
#include "feed/teacher_source.h"
#include "feed/train.h"

typedef struct {
    const feed_config *cfg;
    int n_teachers, n_terms;
    feed_teacher_source *src;
    const feed_term_ops **ops; /* [n_terms] */
    void **term;               /* [n_terms] */
    feed_teacher_view *views;  /* [n_teachers] this step's payloads */
    feed_student_taps taps;
    double *wait_sum;          /* [n_teachers] seconds waited this epoch */
    char (*wait_names)[32];    /* "wait_s_<n>" */
} distill_student;

static void on_setup(void *self, feed_net *student, feed_sgd *sgd) {
    distill_student *p = self;
    p->src = feed_teacher_source_create(p->cfg, feed_terms_outputs(p->cfg), p->cfg->train.batch);
    p->taps = feed_student_taps_of(student);
    int d[4];
    feed_net_output_shape(student, d); /* (B, K) */
    feed_term_setup s = {.cfg = p->cfg, .taps = &p->taps, .batch = d[0], .classes = d[1], .sgd = sgd,
                         .n_teachers = p->n_teachers, .teachers = p->src->layouts};
    for (int i = 0; i < p->n_terms; i++) p->term[i] = p->ops[i]->create(&s);
}

static void on_save(void *self, feed_ckpt_writer *w) {
    distill_student *p = self;
    for (int i = 0; i < p->n_terms; i++)
        if (p->ops[i]->save) p->ops[i]->save(p->term[i], w);
    feed_ckpt_put_i64(w, "train", "num_teachers", p->n_teachers);
}

static void on_restore(void *self, const feed_ckpt *ck) {
    distill_student *p = self;
    int64_t n_saved = feed_ckpt_read_i64(ck, "train", "num_teachers");
    if (n_saved != p->n_teachers)
        FEED_INPUT_ERROR("resume with the same distill.teachers, or start fresh (checkpoint.resume=none)",
                         "checkpoint %s was trained with %lld teachers, the config lists %d", feed_ckpt_path(ck),
                         (long long)n_saved, p->n_teachers);
    for (int i = 0; i < p->n_terms; i++)
        if (p->ops[i]->restore) p->ops[i]->restore(p->term[i], ck);
}

static void on_start(void *self, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    distill_student *p = self;
    feed_source_start(p->src, epoch, step_in_epoch, global_step);
}

static void on_add_loss(void *self, feed_net *student, int64_t step, const int64_t *idx, int n,
                        const float *logits, float *dlogits) {
    distill_student *p = self;
    uint64_t batch_id = feed_batch_id(idx, n);
    for (int k = 0; k < p->n_teachers; k++) {
        double waited = 0;
        const float *payload = feed_source_get(p->src, k, step, batch_id, &waited);
        p->views[k] = feed_teacher_view_of(&p->src->layouts[k], payload);
        p->wait_sum[k] += waited;
    }
    (void)student; /* its taps are p->taps */
    feed_term_batch b = {.taps = &p->taps, .logits = logits, .dlogits = dlogits, .teachers = p->views};
    for (int i = 0; i < p->n_terms; i++) p->ops[i]->step(p->term[i], &b);
    feed_source_release(p->src, step);
}

static int on_epoch_metrics(void *self, const char **names, double *values, int max) {
    distill_student *p = self;
    int m = 0;
    for (int i = 0; i < p->n_terms; i++) m += p->ops[i]->epoch_metrics(p->term[i], names + m, values + m, max - m);
    for (int k = 0; k < p->n_teachers && m < max; k++, m++) {
        names[m] = p->wait_names[k];
        values[m] = p->wait_sum[k];
        p->wait_sum[k] = 0;
    }
    return m;
}

static void on_finish(void *self) { feed_source_finish(((distill_student *)self)->src); }

int feed_distill_student(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    distill_student p = {.cfg = cfg, .n_teachers = cfg->distill.teachers.n, .n_terms = cfg->distill.terms.n};
    int N = p.n_teachers;
    p.ops = feed_xcalloc((size_t)p.n_terms, sizeof *p.ops, "terms");
    p.term = feed_xcalloc((size_t)p.n_terms, sizeof *p.term, "terms");
    for (int i = 0; i < p.n_terms; i++) p.ops[i] = feed_term_table[cfg->distill.terms.v[i]];
    p.views = feed_xcalloc((size_t)N, sizeof *p.views, "teacher views");
    p.wait_sum = feed_xcalloc((size_t)N, sizeof *p.wait_sum, "wait sums");
    p.wait_names = feed_xcalloc((size_t)N, sizeof *p.wait_names, "metric names");
    for (int k = 0; k < N; k++) snprintf(p.wait_names[k], sizeof p.wait_names[k], "wait_s_%d", k + 1);
    feed_train_extension ext = {
        .self = &p,
        .ce_weight = feed_cfg_ce_weight(cfg),
        .setup = on_setup,
        .save = on_save,
        .restore = on_restore,
        .start = on_start,
        .add_loss = on_add_loss,
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
    for (int i = 0; i < p.n_terms; i++) p.ops[i]->destroy(p.term[i]);
    feed_source_destroy(p.src);
    free(p.ops), free(p.term), free(p.views), free(p.wait_sum), free(p.wait_names);
    return rc;
}

feed_teacher_source *feed_teacher_source_create(const feed_config *cfg, int outputs, int batch) {
    return cfg->distill.source == FEED_SOURCE_LOCAL ? feed_source_local_create(cfg, outputs, batch)
                                                    : feed_source_mpi_create(cfg, outputs, batch);
}
