/* student.c - the distillation part of a student's training (distill.h): a
 * feed_train_extension that gets the teachers' payloads of every minibatch from a teacher
 * source and runs the terms on them. A distill job's rank 0 uses it with the teachers of
 * distill.teachers; each sfeed generation with the generation before (generation.c). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/distill_term.h"
#include "feed/teacher.h"
#include "feed/teacher_source.h"
#include "feed/train.h"

struct feed_distill_student {
    feed_distill_spec spec;
    int n_terms;
    feed_teacher_source *src;
    const feed_term_ops **ops; /* [n_terms] */
    void **term;               /* [n_terms] */
    feed_teacher_view *views;  /* [n_teachers] this step's payloads */
    feed_student_taps taps;
    double *wait_sum;          /* [n_teachers] seconds waited this epoch */
    char (*wait_names)[32];    /* "wait_s_<n>" */
    /* train.on_nonfinite = skip_step: every module's BN buffers before this step's forward */
    bool keep_buffers;
    char *buffers;             /* feed_net_buffers_bytes of every module, in term, teacher order */
};

/* The trainable module term i keeps for teacher k, or NULL. */
static feed_net *module_of(const feed_distill_student *p, int i, int k) {
    return p->ops[i]->module ? p->ops[i]->module(p->term[i], k) : NULL;
}

/* Save (restore = false) or restore every module's BN buffers to/from p->buffers. */
static void module_buffers(feed_distill_student *p, bool restore) {
    char *at = p->buffers;
    for (int i = 0; i < p->n_terms; i++)
        for (int k = 0; k < p->spec.n_teachers; k++) {
            feed_net *m = module_of(p, i, k);
            if (!m) continue;
            if (restore) feed_net_buffers_restore(m, at);
            else feed_net_buffers_save(m, at);
            at += feed_net_buffers_bytes(m);
        }
}

static void on_setup(void *self, feed_net *student, feed_sgd *sgd) {
    feed_distill_student *p = self;
    int outputs = 0;
    for (int i = 0; i < p->n_terms; i++) outputs |= p->ops[i]->outputs;
    int d[4];
    feed_net_output_shape(student, d); /* (B, K): B is this replica's share of train.batch */
    p->src = p->spec.make_source(p->spec.source_ctx, outputs, d[0]);
    p->taps = feed_student_taps_of(student);
    feed_term_setup s = {.cfg = p->spec.cfg, .taps = &p->taps, .batch = d[0], .classes = d[1], .seed = p->spec.seed,
                         .sgd = sgd, .n_teachers = p->spec.n_teachers, .teachers = p->src->layouts};
    for (int i = 0; i < p->n_terms; i++) p->term[i] = p->ops[i]->create(&s);
    p->keep_buffers = p->spec.cfg->train.on_nonfinite == FEED_NONFINITE_SKIP;
    if (p->keep_buffers) {
        size_t bytes = 0;
        for (int i = 0; i < p->n_terms; i++)
            for (int k = 0; k < p->spec.n_teachers; k++)
                if (module_of(p, i, k)) bytes += feed_net_buffers_bytes(module_of(p, i, k));
        p->buffers = feed_xmalloc(bytes ? bytes : 1, "module BN buffers");
    }
}

static void on_save(void *self, feed_ckpt_writer *w) {
    feed_distill_student *p = self;
    for (int i = 0; i < p->n_terms; i++)
        if (p->ops[i]->save) p->ops[i]->save(p->term[i], w);
    feed_ckpt_put_i64(w, "train", "num_teachers", p->spec.n_teachers);
}

static void on_restore(void *self, const feed_ckpt *ck) {
    feed_distill_student *p = self;
    int64_t n_saved = feed_ckpt_read_i64(ck, "train", "num_teachers");
    if (n_saved != p->spec.n_teachers)
        FEED_INPUT_ERROR("resume with the same distill.teachers, or start fresh (checkpoint.resume=none)",
                         "checkpoint %s was trained with %lld teachers, the config lists %d", feed_ckpt_path(ck),
                         (long long)n_saved, p->spec.n_teachers);
    for (int i = 0; i < p->n_terms; i++)
        if (p->ops[i]->restore) p->ops[i]->restore(p->term[i], ck);
}

static void on_start(void *self, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    feed_distill_student *p = self;
    feed_source_start(p->src, epoch, step_in_epoch, global_step);
}

static void on_add_loss(void *self, feed_net *student, int64_t step, const int64_t *idx, int n,
                        const float *logits, float *dlogits) {
    feed_distill_student *p = self;
    (void)student; /* its taps are p->taps */
    uint64_t batch_id = feed_batch_id(idx, n);
    for (int k = 0; k < p->spec.n_teachers; k++) {
        double waited = 0;
        const float *payload = feed_source_get(p->src, k, step, batch_id, &waited);
        p->views[k] = feed_teacher_view_of(&p->src->layouts[k], payload);
        p->wait_sum[k] += waited;
    }
    feed_term_batch b = {.taps = &p->taps, .logits = logits, .dlogits = dlogits, .teachers = p->views};
    if (p->keep_buffers) module_buffers(p, false);
    for (int i = 0; i < p->n_terms; i++) p->ops[i]->step(p->term[i], &b);
    feed_source_release(p->src, step);
}

/* The terms' losses of this step, then each module's gradients and BN statistics. */
static bool on_step_nonfinite(void *self, char *what, size_t cap) {
    feed_distill_student *p = self;
    for (int i = 0; i < p->n_terms; i++) {
        const feed_term_losses *l = p->ops[i]->losses(p->term[i]);
        for (int k = 0; k < l->n; k++)
            if (!isfinite(l->last[k])) {
                snprintf(what, cap, "the %s loss (%s) is %g", p->ops[i]->name, l->names[k], l->last[k]);
                return true;
            }
    }
    static const int checks[2] = {FEED_CHECK_GRADS, FEED_CHECK_BUFFERS};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < p->n_terms; i++)
            for (int k = 0; k < p->spec.n_teachers; k++) {
                feed_net *m = module_of(p, i, k);
                float v;
                int e = m ? feed_net_first_nonfinite(m, checks[c], &v) : -1;
                if (e >= 0) {
                    snprintf(what, cap, "the %s of the %s module for teacher %d, '%s', holds %g",
                             checks[c] == FEED_CHECK_GRADS ? "gradient" : "BN statistic", p->ops[i]->name, k + 1,
                             feed_net_entry(m, e)->name, v);
                    return true;
                }
            }
    return false;
}

static void on_step_end(void *self, int64_t global_step, bool kept) {
    feed_distill_student *p = self;
    (void)global_step;
    if (kept) {
        for (int i = 0; i < p->n_terms; i++) feed_term_losses_commit(p->ops[i]->losses(p->term[i]));
    } else if (p->keep_buffers) {
        module_buffers(p, true);
    }
}

static int on_epoch_metrics(void *self, const char **names, double *values, int max) {
    feed_distill_student *p = self;
    int m = 0;
    for (int i = 0; i < p->n_terms; i++)
        m += feed_term_losses_report(p->ops[i]->losses(p->term[i]), names + m, values + m, max - m);
    for (int k = 0; k < p->spec.n_teachers && m < max; k++, m++) {
        names[m] = p->wait_names[k];
        values[m] = p->wait_sum[k];
        p->wait_sum[k] = 0;
    }
    return m;
}

/* " wait 0.0 1.2 s": each teacher's wait so far in this epoch. */
static void on_progress(void *self, char *buf, size_t cap) {
    feed_distill_student *p = self;
    size_t len = (size_t)snprintf(buf, cap, " wait");
    for (int k = 0; k < p->spec.n_teachers && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, " %.1f", p->wait_sum[k]);
    if (len < cap) snprintf(buf + len, cap - len, " s");
}

static int on_modules(void *self, feed_net **out, int max) {
    feed_distill_student *p = self;
    int n = 0;
    for (int i = 0; i < p->n_terms; i++)
        for (int k = 0; k < p->spec.n_teachers; k++)
            if (module_of(p, i, k)) {
                FEED_CHECK(n < max, "this is a bug", "more than %d distillation modules", max);
                out[n++] = module_of(p, i, k);
            }
    return n;
}

static void on_finish(void *self) { feed_source_finish(((feed_distill_student *)self)->src); }

feed_distill_student *feed_distill_student_create(const feed_distill_spec *spec) {
    feed_distill_student *p = feed_xcalloc(1, sizeof *p, "distillation student");
    p->spec = *spec;
    int N = spec->n_teachers;
    p->n_terms = spec->terms->n;
    p->ops = feed_xcalloc((size_t)p->n_terms, sizeof *p->ops, "terms");
    p->term = feed_xcalloc((size_t)p->n_terms, sizeof *p->term, "terms");
    for (int i = 0; i < p->n_terms; i++) p->ops[i] = feed_term_table[spec->terms->v[i]];
    p->views = feed_xcalloc((size_t)N, sizeof *p->views, "teacher views");
    p->wait_sum = feed_xcalloc((size_t)N, sizeof *p->wait_sum, "wait sums");
    p->wait_names = feed_xcalloc((size_t)N, sizeof *p->wait_names, "metric names");
    for (int k = 0; k < N; k++) snprintf(p->wait_names[k], sizeof p->wait_names[k], "wait_s_%d", k + 1);
    return p;
}

feed_train_extension feed_distill_student_extension(feed_distill_student *p) {
    return (feed_train_extension){
        .self = p,
        .ce_weight = feed_cfg_ce_weight(p->spec.cfg),
        .setup = on_setup,
        .save = on_save,
        .restore = on_restore,
        .start = on_start,
        .add_loss = on_add_loss,
        .step_nonfinite = on_step_nonfinite,
        .step_end = on_step_end,
        .progress = on_progress,
        .modules = on_modules,
        .epoch_metrics = on_epoch_metrics,
        .finish = on_finish,
    };
}

feed_teacher_source *feed_distill_student_source(feed_distill_student *p) { return p->src; }

void feed_distill_student_free(feed_distill_student *p) {
    if (!p) return;
    for (int i = 0; i < p->n_terms; i++)
        if (p->term[i]) p->ops[i]->destroy(p->term[i]);
    feed_source_destroy(p->src);
    free(p->ops), free(p->term), free(p->views), free(p->wait_sum), free(p->wait_names), free(p->buffers), free(p);
}

/* ---- run.mode = distill / pfeed, the student's ranks ---- */

typedef struct {
    const feed_config *cfg;
    int replica, replicas;
} job_ctx;

static feed_teacher_source *job_source(void *ctx, int outputs, int batch) {
    const job_ctx *j = ctx;
    switch (j->cfg->distill.source) {
    case FEED_SOURCE_LOCAL: return feed_source_local_create(j->cfg, outputs, batch);
    case FEED_SOURCE_CACHE: return feed_source_cache_create(j->cfg, outputs, batch, j->replica, j->replicas);
    default: return feed_source_mpi_create(j->cfg, outputs, batch, j->replica, j->replicas);
    }
}

int feed_distill_student_rank(const feed_run_ctx *ctx, MPI_Comm replicas) {
    const feed_config *cfg = ctx->cfg;
    job_ctx jc = {.cfg = cfg, .replicas = 1};
    CHECK_MPI(MPI_Comm_rank(replicas, &jc.replica));
    CHECK_MPI(MPI_Comm_size(replicas, &jc.replicas));
    feed_distill_spec spec = {.cfg = cfg, .terms = &cfg->distill.terms, .n_teachers = cfg->distill.teachers.n,
                              .seed = (uint64_t)cfg->run.seed, .make_source = job_source, .source_ctx = &jc};
    feed_distill_student *d = feed_distill_student_create(&spec);
    feed_train_extension ext = feed_distill_student_extension(d);
    char final_path[4200];
    snprintf(final_path, sizeof final_path, "%s/student.h5", cfg->run.dir);
    feed_train_job job = {
        .cfg = cfg,
        .comm = replicas, /* the student's replicas (usually one); teachers follow its schedule */
        .rank = jc.replica,
        .size = jc.replicas,
        .replicas = replicas,
        .sync_bn = cfg->distill.sync_bn,
        .seed = spec.seed,
        .prefix = "student",
        .final_path = final_path,
        .ext = &ext,
    };
    int rc = feed_train_run(&job);
    feed_distill_student_free(d);
    return rc;
}
