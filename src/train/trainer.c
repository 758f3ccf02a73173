/* trainer.c - the training loop of one network on one rank (see include/feed/train.h).
 *
 * Per step:  loader batch (epoch, step) -> forward (train) -> CE -> backward -> SGD
 * Per epoch: evaluation, metrics, checkpoint (every checkpoint.every epochs), best copy.
 * Any step:  SIGUSR1/SIGTERM on any rank -> all ranks checkpoint that step (the epoch's last step:
 *            at the end of that epoch) and return.
 * Any step:  a non-finite loss, gradient or BN statistic -> the job ends before the optimizer
 *            step, naming what diverged; no checkpoint is written from that state. With
 *            train.on_nonfinite = skip_step the step is dropped instead (no optimizer step, BN
 *            statistics put back), counted, and the job ends after train.max_skipped_steps
 *            dropped steps in a row.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>

#include "feed/check.h"
#include "feed/feature_cache.h"
#include "feed/finite.h"
#include "feed/loss_ce.h"
#include "feed/lr_schedule.h"
#include "feed/metrics.h"
#include "feed/replicas.h"
#include "feed/resume.h"
#include "feed/sgd.h"
#include "feed/signals.h"
#include "feed/train.h"

/* Global step numbers of a test hook (at most 16). */
typedef struct {
    int n;
    int64_t v[16];
} feed_step_list;

typedef struct {
    const feed_train_job *job;
    const feed_config *cfg;
    feed_dataset *ds;
    feed_loader *train_ld, *test_ld;
    feed_model_spec spec;
    char model_name[64]; /* canonical, e.g. "resnet20-b": the checkpoint's arch */
    feed_net *net;
    float *momentum;  /* flat, the engine's parameter layout */
    feed_sgd sgd;
    feed_lr_schedule sched;
    int B, classes;
    size_t img;       /* C*H*W */
    float *x;         /* (B, C, H, W) */
    int32_t *y;       /* (B) */
    float *dlogits;   /* (B, classes) */
    int64_t epoch;          /* completed epochs */
    int64_t step_in_epoch;  /* steps done in the current epoch */
    int64_t global_step;    /* optimizer steps done */
    double best_error;
    const feed_train_extension *ext;
    int64_t *idx;     /* (B) sample indices of the current batch, for extensions */
    int n_student_params; /* the first entries of sgd.params are the network's; then modules' */
    char last_ckpt[4200]; /* the newest checkpoint this run wrote or resumed from, or "" */
    /* train.on_nonfinite = skip_step */
    bool skip;
    void *bn_saved;           /* the network's BN buffers before this step's forward */
    int64_t skipped_total;    /* steps dropped in the run */
    int64_t skipped_in_a_row; /* steps dropped since the last kept one */
    int64_t skipped_epoch;    /* steps dropped in this epoch */
    feed_step_list inject_nan, drop, drift; /* test hooks: see read_step_list */
    /* data-parallel replicas (job->replicas with P > 1); NULL when training alone */
    feed_replicas *rep;
    int replica, replicas;    /* r and P (0 and 1 alone) */
    bool writer;              /* replica 0: evaluates, writes checkpoints and metrics */
    MPI_Comm report_comm;     /* the writers of job->comm (one per network), or MPI_COMM_NULL */
    double allreduce_wait_s;  /* this epoch: waiting for gradient reductions after backward */
} trainer;

float *feed_sgd_add_net(feed_sgd *sgd, feed_net *net) {
    size_t n;
    float *params = feed_net_params(net, &n), *grads = feed_net_grads(net, NULL);
    float *momentum = feed_xaligned((n ? n : 1) * sizeof(float), "momentum buffers");
    memset(momentum, 0, (n ? n : 1) * sizeof(float));
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->kind == FEED_PARAM)
            feed_sgd_add_param(sgd, params + e->offset, grads + e->offset, momentum + e->offset, e->len, e->decay);
    }
    return momentum;
}

feed_loader_config feed_train_loader_config(const feed_config *cfg, int B, uint64_t seed) {
    feed_loader_config lc = feed_loader_config_train(B, seed);
    lc.pad = cfg->data.pad;
    lc.pad_mode = (feed_pad_mode)cfg->data.pad_mode;
    lc.random_crop = cfg->data.crop;
    lc.hflip = cfg->data.flip;
    lc.subset_per_class = cfg->data.subset_per_class;
    lc.subset_fraction = cfg->data.subset_fraction < 1.0 ? cfg->data.subset_fraction : 0.0;
    lc.prefetch_depth = cfg->data.prefetch;
    if (cfg->distill.source == FEED_SOURCE_CACHE &&
        (cfg->run.mode == FEED_MODE_DISTILL || cfg->run.mode == FEED_MODE_PFEED)) {
        /* the student replays the augmentation of the caches' views (feature_cache.h) */
        lc.augment_views = cfg->cache.views;
        lc.augment_seed = feed_cache_seed(cfg);
    }
    return lc;
}

static feed_lr_schedule make_schedule(const feed_config *cfg, int64_t steps_per_epoch) {
    feed_lr_schedule s;
    if (cfg->train.schedule == FEED_SCHED_COSINE) {
        s = feed_lr_cosine(cfg->train.lr, cfg->train.epochs, 0.0);
    } else {
        s = feed_lr_multistep(cfg->train.lr, cfg->train.milestones.v, cfg->train.milestones.n,
                              cfg->train.gamma);
    }
    s.warmup_steps = (long)(cfg->train.warmup_epochs * steps_per_epoch);
    feed_lr_validate(&s);
    return s;
}

/* Fault injection for tests (tests/train/skip_step.py), from the environment:
 *   FEED_TEST_NONFINITE_STEPS=3,7  a NaN in the logits' gradient of global steps 3 and 7, after
 *                                  the losses: the step's forward (BN statistics, modules) is
 *                                  real and its backward turns non-finite;
 *   FEED_TEST_DROP_STEPS=3,7       steps 3 and 7 left out entirely (batch read, nothing run):
 *                                  the reference a skipped step must equal bit for bit;
 *   FEED_TEST_REPLICA_DRIFT=5      after global step 5 replica 1 (of data-parallel replicas)
 *                                  nudges one weight by 0.1 %: the drift check must name it. */
static feed_step_list read_step_list(const char *name) {
    feed_step_list l = {0};
    const char *s = getenv(name);
    for (char *end; s && *s && l.n < 16; s = *end ? end + 1 : end) {
        l.v[l.n++] = strtoll(s, &end, 10);
        if (end == s) break;
    }
    return l;
}

static bool in_step_list(const feed_step_list *l, int64_t step) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == step) return true;
    return false;
}

static void setup(trainer *t, const feed_train_job *job) {
    const feed_config *cfg = job->cfg;
    t->job = job;
    t->cfg = cfg;
    t->ds = feed_dataset_open(cfg->data.path);
    t->replicas = 1;
    if (job->replicas && job->replicas != MPI_COMM_NULL) {
        CHECK_MPI(MPI_Comm_rank(job->replicas, &t->replica));
        CHECK_MPI(MPI_Comm_size(job->replicas, &t->replicas));
    }
    t->writer = t->replica == 0;
    FEED_CHECK(cfg->train.batch % t->replicas == 0, "make train.batch a multiple of the replicas",
               "train.batch = %d does not split into %d replicas", cfg->train.batch, t->replicas);
    t->B = cfg->train.batch / t->replicas; /* this replica's shard of the global batch */
    t->classes = t->ds->num_classes;
    t->img = (size_t)t->ds->channels * t->ds->height * t->ds->width;
    feed_loader_config lc = feed_train_loader_config(cfg, t->B, job->seed);
    /* shard r of P: the P shards of step s are the global batch s of a single rank */
    lc.shard_rank = t->replica;
    lc.shard_count = t->replicas;
    t->train_ld = feed_loader_create(t->ds, &lc);
    FEED_CHECK(feed_loader_steps_per_epoch(t->train_ld) > 0,
               "lower train.batch or use more of the data set (data.subset_*)",
               "train.batch = %d is larger than the %lld training images selected", t->B,
               (long long)feed_loader_samples_per_epoch(t->train_ld));
    feed_loader_config ec = feed_loader_config_eval(t->B);
    t->test_ld = feed_loader_create(t->ds, &ec);

    t->spec = feed_model_spec_from_config(cfg, t->ds, t->B);
    feed_model_name(&t->spec, t->model_name, sizeof t->model_name);
    t->net = feed_model_create(&t->spec, job->seed, false);
    feed_sgd_config sc = {.momentum = (float)cfg->train.momentum,
                          .dampening = 0,
                          .weight_decay = (float)cfg->train.weight_decay,
                          .nesterov = cfg->train.nesterov && cfg->train.momentum > 0};
    feed_sgd_init(&t->sgd, sc);
    t->momentum = feed_sgd_add_net(&t->sgd, t->net);
    t->n_student_params = t->sgd.count;
    t->ext = job->ext;
    if (t->ext && t->ext->setup) t->ext->setup(t->ext->self, t->net, &t->sgd);
    if (t->replicas > 1) {
        feed_net *modules[64];
        int n_modules = t->ext && t->ext->modules ? t->ext->modules(t->ext->self, modules, 64) : 0;
        feed_replicas_config rc = {.comm = job->replicas, .sync_bn = job->sync_bn,
                                   .check_every = cfg->train.replica_check,
                                   .what = job->label ? job->label : job->prefix};
        t->rep = feed_replicas_create(&rc, t->net, modules, n_modules, &t->sgd);
    }
    t->report_comm = MPI_COMM_NULL;
    CHECK_MPI(MPI_Comm_split(job->comm, t->writer ? 0 : MPI_UNDEFINED, job->rank, &t->report_comm));
    t->idx = feed_xmalloc(sizeof(int64_t) * t->B, "batch indices");
    t->sched = make_schedule(cfg, feed_loader_steps_per_epoch(t->train_ld));
    t->x = feed_xaligned(sizeof(float) * t->B * t->img, "input batch");
    t->y = feed_xmalloc(sizeof(int32_t) * t->B, "labels");
    t->dlogits = feed_xaligned(sizeof(float) * t->B * t->classes, "logit gradients");
    t->best_error = INFINITY;
    t->skip = cfg->train.on_nonfinite == FEED_NONFINITE_SKIP;
    if (t->skip) t->bn_saved = feed_xmalloc(feed_net_buffers_bytes(t->net) + 1, "BN buffers of a step");
    t->inject_nan = read_step_list("FEED_TEST_NONFINITE_STEPS");
    t->drop = read_step_list("FEED_TEST_DROP_STEPS");
    t->drift = read_step_list("FEED_TEST_REPLICA_DRIFT");
}

static void teardown(trainer *t) {
    feed_replicas_free(t->rep);
    if (t->report_comm != MPI_COMM_NULL) CHECK_MPI(MPI_Comm_free(&t->report_comm));
    feed_loader_destroy(t->train_ld);
    feed_loader_destroy(t->test_ld);
    feed_net_free(t->net);
    feed_sgd_free(&t->sgd);
    free(t->momentum);
    free(t->x);
    free(t->y);
    free(t->dlogits);
    free(t->idx);
    free(t->bn_saved);
    feed_dataset_close(t->ds);
}

/* ---- checkpoints ---- */

static void save(trainer *t, const char *path) {
    const feed_config *cfg = t->cfg;
    feed_ckpt_meta meta = {
        .arch = t->model_name,
        .dataset = t->ds->name,
        .num_classes = t->classes,
        .in_channels = t->ds->channels,
        .epoch = t->epoch,
        .step = t->global_step,
        .seed = (int64_t)t->job->seed,
        .config_ini = cfg->ini_text,
    };
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    feed_ckpt_put_attr_str(w, NULL, "config_overrides", cfg->overrides ? cfg->overrides : "");
    feed_model_put_attrs(w, &t->spec);
    feed_net_save(w, t->net, "model");
    feed_net_save_flat(w, t->net, t->momentum, "optim/momentum");
    feed_ckpt_put_i64(w, "train", "epoch", t->epoch);
    feed_ckpt_put_i64(w, "train", "step_in_epoch", t->step_in_epoch);
    feed_ckpt_put_i64(w, "train", "global_step", t->global_step);
    feed_ckpt_put_i64(w, "train", "sgd_steps", t->sgd.steps_taken);
    feed_ckpt_put_i64(w, "train", "seed", (int64_t)t->job->seed);
    feed_ckpt_put_f64(w, "train", "best_error", t->best_error);
    feed_ckpt_put_f64(w, "train", "lr", feed_lr_at_step(&t->sched, (int)t->epoch, t->global_step));
    if (t->skip) {
        feed_ckpt_put_i64(w, "train", "skipped_steps", t->skipped_total);
        feed_ckpt_put_i64(w, "train", "skipped_in_a_row", t->skipped_in_a_row);
        feed_ckpt_put_i64(w, "train", "skipped_epoch", t->skipped_epoch);
    }
    if (t->ext && t->ext->save) t->ext->save(t->ext->self, w);
    feed_ckpt_commit(w);
}

/* The position a checkpoint resumes at must be one this run can reach: epoch in
 * [0, train.epochs], step_in_epoch inside an epoch of this run, and global_step = the steps of
 * the epochs before plus step_in_epoch - which also catches a resume with another train.batch
 * or data.subset_* (another number of steps per epoch). */
static void check_resumed_position(const trainer *t, const feed_ckpt *ck) {
    const char *hint = "resume with the train.batch and data.subset_* the checkpoint was made with, or start "
                       "fresh (checkpoint.resume = none)";
    int64_t steps = feed_loader_steps_per_epoch(t->train_ld), epochs = t->cfg->train.epochs;
    if (t->epoch < 0 || t->epoch > epochs)
        FEED_INPUT_ERROR("the file is damaged or was edited, or train.epochs was lowered below it",
                         "checkpoint %s: train/epoch = %lld is outside [0, train.epochs = %lld]", feed_ckpt_path(ck),
                         (long long)t->epoch, (long long)epochs);
    if (t->step_in_epoch < 0 || t->step_in_epoch >= steps)
        FEED_INPUT_ERROR(hint, "checkpoint %s stopped at step %lld of an epoch, but an epoch now has %lld steps "
                         "(train/step_in_epoch)", feed_ckpt_path(ck), (long long)t->step_in_epoch, (long long)steps);
    if (t->global_step != t->epoch * steps + t->step_in_epoch)
        FEED_INPUT_ERROR(hint, "checkpoint %s: train/global_step = %lld, but epoch %lld + %lld steps of this run's %lld "
                         "steps per epoch (train.batch = %d, data.subset_per_class = %d, data.subset_fraction = %g) "
                         "make %lld", feed_ckpt_path(ck), (long long)t->global_step, (long long)t->epoch,
                         (long long)t->step_in_epoch, (long long)steps, t->B, t->cfg->data.subset_per_class,
                         t->cfg->data.subset_fraction, (long long)(t->epoch * steps + t->step_in_epoch));
}

static void restore(trainer *t, const feed_ckpt *ck) {
    feed_ckpt_require_model(ck, t->model_name, t->classes, t->ds->channels);
    int64_t seed = feed_ckpt_read_i64(ck, "train", "seed");
    if (seed != (int64_t)t->job->seed)
        FEED_INPUT_ERROR("resume with the run.seed the checkpoint was made with, or checkpoint.resume=none",
                         "checkpoint %s was trained with seed %lld, this rank uses %llu",
                         feed_ckpt_path(ck), (long long)seed, (unsigned long long)t->job->seed);
    feed_net_load(ck, t->net, "model");
    feed_net_load_flat(ck, t->net, t->momentum, "optim/momentum");
    t->epoch = feed_ckpt_read_i64(ck, "train", "epoch");
    t->step_in_epoch = feed_ckpt_read_i64(ck, "train", "step_in_epoch");
    t->global_step = feed_ckpt_read_i64(ck, "train", "global_step");
    feed_sgd_set_steps_taken(&t->sgd, (long)feed_ckpt_read_i64(ck, "train", "sgd_steps"));
    t->best_error = feed_ckpt_read_f64(ck, "train", "best_error");
    if (feed_ckpt_has(ck, "train", "skipped_steps")) { /* written by skip_step runs */
        t->skipped_total = feed_ckpt_read_i64(ck, "train", "skipped_steps");
        t->skipped_in_a_row = feed_ckpt_read_i64(ck, "train", "skipped_in_a_row");
        t->skipped_epoch = feed_ckpt_read_i64(ck, "train", "skipped_epoch");
    }
    if (t->ext && t->ext->restore) t->ext->restore(t->ext->self, ck);
    check_resumed_position(t, ck);
}

static void save_periodic(trainer *t) {
    const feed_config *cfg = t->cfg;
    char *path = feed_ckpt_dir_path(cfg->run.dir, t->job->prefix, t->epoch, t->global_step);
    save(t, path);
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", path);
    feed_ckpt_dir_prune(cfg->run.dir, t->job->prefix, cfg->checkpoint.keep_last);
    free(path);
}

/* ---- numerical health ---- */

/* What went non-finite in this step, checked in the order a divergence shows itself: the
 * cross-entropy, the extension's losses and modules (named by term and teacher), the logits'
 * gradient, the network's gradients (named), its BN statistics. Writes a description to
 * what; false if all is finite. */
static bool step_nonfinite(trainer *t, double loss, int n, char *what, size_t size) {
    float v;
    if (!isfinite(loss)) {
        snprintf(what, size, "the cross-entropy is %g", loss);
        return true;
    }
    if (t->ext && t->ext->step_nonfinite && t->ext->step_nonfinite(t->ext->self, what, size)) return true;
    size_t nd = (size_t)n * t->classes, at = feed_first_nonfinite(t->dlogits, nd);
    if (at < nd) {
        snprintf(what, size, "the gradient of the logits holds %g (sample %zu, class %zu)", t->dlogits[at],
                 at / t->classes, at % t->classes);
        return true;
    }
    int e = feed_net_first_nonfinite(t->net, FEED_CHECK_GRADS, &v);
    if (e >= 0) {
        snprintf(what, size, "the gradient of '%s' holds %g", feed_net_entry(t->net, e)->name, v);
        return true;
    }
    e = feed_net_first_nonfinite(t->net, FEED_CHECK_BUFFERS, &v);
    if (e >= 0) {
        snprintf(what, size, "the BN statistic '%s' holds %g", feed_net_entry(t->net, e)->name, v);
        return true;
    }
    return false;
}

/* Ends the job (every rank) for a step that went non-finite, before its optimizer step:
 * names the step, what diverged and the checkpoint a resume starts from. */
static noreturn void fail_nonfinite(trainer *t, int64_t s, double lr, const char *what) {
    const char *resume = *t->last_ckpt ? feed_fmt("the newest checkpoint, %s, is from before it", t->last_ckpt)
                                       : "there is no checkpoint yet";
    const char *again = *t->last_ckpt ? "the same command continues from that checkpoint"
                                      : "the same command starts again from epoch 1";
    const char *skipped = t->skip ? feed_fmt(" (%lld non-finite steps in a row, train.max_skipped_steps = %d)",
                                             (long long)t->skipped_in_a_row, t->cfg->train.max_skipped_steps)
                                  : "";
    FEED_FAIL(feed_fmt("lower train.lr (%g at this step) or the distillation weights, or raise train.batch; %s",
                       lr, again),
              "%straining diverged at step %lld of epoch %lld (step %lld of the run): %s%s; nothing was saved "
              "from this state, %s",
              t->job->label ? feed_fmt("%s: ", t->job->label) : "", (long long)s + 1, (long long)t->epoch + 1,
              (long long)t->global_step + 1, what, skipped, resume);
}

/* train.on_nonfinite = skip_step: drop step s (no optimizer step; the network's and the
 * modules' BN statistics as before its forward), say so on stderr, and end the job after
 * train.max_skipped_steps dropped steps in a row. */
static void skip_step(trainer *t, int64_t s, double lr, const char *what) {
    t->skipped_in_a_row++;
    if (t->skipped_in_a_row >= t->cfg->train.max_skipped_steps) fail_nonfinite(t, s, lr, what);
    feed_net_buffers_restore(t->net, t->bn_saved);
    t->skipped_total++;
    t->skipped_epoch++;
    fprintf(stderr, "%s%s%sstep %lld of epoch %lld (step %lld of the run) skipped: %s (%lld in a row, the run stops at %d)\n",
            t->job->size > 1 ? feed_fmt("rank %d: ", t->job->rank) : "", t->job->label ? t->job->label : "",
            t->job->label ? ": " : "", (long long)s + 1, (long long)t->epoch + 1, (long long)t->global_step + 1, what,
            (long long)t->skipped_in_a_row, t->cfg->train.max_skipped_steps);
}

/* ---- the loop ---- */

static int64_t train_epoch(trainer *t, feed_progress *prog, double *loss_out, double *err_out,
                           double *img_s_out, bool *stopped) {
    const feed_config *cfg = t->cfg;
    int64_t steps = feed_loader_steps_per_epoch(t->train_ld);
    int64_t errors = 0, samples = 0;
    *stopped = false;
    if (t->ext && t->ext->epoch_begin && !t->ext->epoch_begin(t->ext->self, t->epoch)) {
        *stopped = true;
        *loss_out = *err_out = NAN;
        *img_s_out = 0;
        return 0;
    }
    double loss_sum = 0, t0 = feed_now_seconds(); /* img/s counts training, not waiting at the start */
    feed_progress_start(prog, t->writer ? t->job->rank : 1, cfg->run.progress_s);
    for (int64_t s = t->step_in_epoch; s < steps; s++) {
        double lr = feed_lr_at_step(&t->sched, (int)t->epoch, t->global_step);
        int n = feed_loader_batch(t->train_ld, t->epoch, s, t->x, t->y);
        if (in_step_list(&t->drop, t->global_step)) {
            t->global_step++;
            t->step_in_epoch = s + 1;
            continue;
        }
        /* dropout masks: replicas draw their own (step, replica) masks */
        feed_net_set_step(t->net, (uint64_t)t->global_step * (uint64_t)t->replicas + (uint64_t)t->replica);
        if (t->skip) feed_net_buffers_save(t->net, t->bn_saved);
        feed_net_forward(t->net, t->x, 1);
        const float *logits = feed_net_output(t->net);
        double loss = feed_ce_forward_backward(logits, t->y, n, t->classes,
                                               (float)cfg->train.label_smoothing, t->dlogits);
        if (t->ext && t->ext->ce_weight != 1.0) {
            float w = (float)t->ext->ce_weight;
            for (size_t i = 0; i < (size_t)n * t->classes; i++) t->dlogits[i] *= w;
        }
        if (t->ext && t->ext->add_loss) {
            feed_loader_batch_indices(t->train_ld, t->epoch, s, t->idx);
            t->ext->add_loss(t->ext->self, t->net, t->global_step, t->idx, n, logits, t->dlogits);
        }
        if (in_step_list(&t->inject_nan, t->global_step) && t->writer) t->dlogits[0] = NAN;
        if (t->rep) feed_replicas_backward_begin(t->rep);
        feed_net_backward(t->net, t->dlogits);
        if (t->rep) t->allreduce_wait_s += feed_replicas_backward_end(t->rep);
        char what[512];
        bool bad = step_nonfinite(t, loss, n, what, sizeof what);
        if (t->rep && feed_replicas_any(t->rep, bad) && !bad) {
            /* this replica's numbers are finite, another's are not: all drop or stop together */
            snprintf(what, sizeof what, "another replica's loss, gradient or BN statistic is not finite");
            bad = true;
            if (!t->skip) CHECK_MPI(MPI_Barrier(t->job->replicas)); /* that replica ends the job */
        }
        bool kept = !bad;
        if (kept) {
            feed_sgd_step(&t->sgd, lr);
            t->skipped_in_a_row = 0;
            errors += feed_count_errors(logits, t->y, n, t->classes);
            loss_sum += loss * n;
            samples += n;
        } else if (t->skip) {
            skip_step(t, s, lr, what);
        } else {
            fail_nonfinite(t, s, lr, what);
        }
        if (t->ext && t->ext->step_end) t->ext->step_end(t->ext->self, t->global_step, kept);
        t->global_step++;
        if (t->replica == 1 && in_step_list(&t->drift, t->global_step - 1))
            t->sgd.params[0].param[0] = t->sgd.params[0].param[0] * 1.001f + 1e-6f;
        if (t->rep) feed_replicas_check(t->rep, &t->sgd, t->global_step);
        t->step_in_epoch = s + 1;
        if (feed_progress_due(prog, s, steps)) {
            double el = feed_now_seconds() - t0;
            char extra[256] = "";
            if (t->ext && t->ext->progress) t->ext->progress(t->ext->self, extra, sizeof extra);
            feed_progress_update(prog, t->epoch + 1, cfg->train.epochs, s, steps, samples ? loss_sum / samples : NAN,
                                 el > 0 ? samples * t->replicas / el : 0, extra);
        }
        /* After the epoch's last step the epoch is finished first (evaluation, metrics,
           checkpoint) and the stop is agreed at its end: a checkpoint is never "all steps of
           the epoch done, epoch not closed". */
        if (s + 1 < steps && feed_signals_agree_stop(t->job->comm)) {
            *stopped = true;
            break;
        }
    }
    feed_progress_clear(prog);
    if (t->rep) { /* the epoch's figures over the global batches */
        double v[3] = {loss_sum, (double)errors, (double)samples};
        feed_replicas_sum(t->rep, v, 3);
        loss_sum = v[0], errors = (int64_t)v[1], samples = (int64_t)v[2];
    }
    double el = feed_now_seconds() - t0;
    *loss_out = samples ? loss_sum / samples : NAN;
    *err_out = samples ? (double)errors / samples : NAN;
    *img_s_out = el > 0 ? samples / el : 0;
    return samples;
}

/* Replica 0's *path (NULL or a string) on every replica of comm. */
static void broadcast_path(MPI_Comm comm, char **path) {
    int rank, len;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    len = rank == 0 && *path ? (int)strlen(*path) + 1 : 0;
    CHECK_MPI(MPI_Bcast(&len, 1, MPI_INT, 0, comm));
    if (rank != 0) {
        free(*path);
        *path = len ? feed_xmalloc((size_t)len, "checkpoint path") : NULL;
    }
    if (len) CHECK_MPI(MPI_Bcast(*path, len, MPI_CHAR, 0, comm));
}

int feed_train_run(const feed_train_job *job) {
    const feed_config *cfg = job->cfg;
    trainer t = {0};
    setup(&t, job);
    feed_signals_install();
    feed_ckpt_dir_create(cfg->run.dir);

    /* replica 0 of every network picks the resume point, its replicas follow */
    feed_resume_choice rc = {NULL};
    if (t.writer) rc = feed_resume_select(cfg, job->prefix, t.report_comm);
    if (t.rep) broadcast_path(job->replicas, &rc.path);
    if (rc.path) {
        feed_ckpt *ck = feed_ckpt_open(rc.path);
        restore(&t, ck);
        snprintf(t.last_ckpt, sizeof t.last_ckpt, "%s", rc.path);
        feed_ckpt_close(ck);
        if (job->rank == 0)
            printf("%s%sresumed from %s (epoch %lld, step %lld)%s\n", job->label ? job->label : "",
                   job->label ? ": " : "", rc.path, (long long)t.epoch,
                   (long long)t.global_step, job->size > 1 ? " and the matching checkpoints of the other ranks" : "");
    }
    char metrics_path[4096];
    snprintf(metrics_path, sizeof metrics_path, "%s/%s_metrics.jsonl", cfg->run.dir, job->prefix);
    if (t.rep) feed_replicas_broadcast_state(t.rep, &t.sgd); /* identical replicas from the start */
    if (t.ext && t.ext->start) t.ext->start(t.ext->self, t.epoch, t.step_in_epoch, t.global_step);
    feed_metrics_log *log = t.writer ? feed_metrics_open(metrics_path, rc.path ? t.epoch : 0) : NULL;
    if (rc.path && log) feed_metrics_event(log, job->rank, "resumed", t.epoch, t.global_step);
    feed_resume_choice_free(&rc);

    if (job->rank == 0) {
        if (job->label) printf("%s: ", job->label);
        char replicas[64] = "";
        if (t.replicas > 1) snprintf(replicas, sizeof replicas, " = %d replicas x %d", t.replicas, t.B);
        printf("%s: %d rank%s training, %s on %s (%lld training images, batch %d%s, %lld steps/epoch), "
               "%zu parameters, %s, %d thread%s per rank\n",
               feed_cfg_mode_names[cfg->run.mode], job->size, job->size > 1 ? "s" : "",
               t.model_name, t.ds->name,
               (long long)feed_loader_samples_per_epoch(t.train_ld) * t.replicas, cfg->train.batch, replicas,
               (long long)feed_loader_steps_per_epoch(t.train_ld), feed_net_num_param_scalars(t.net),
               feed_precision_name(feed_net_precision(t.net)), omp_get_max_threads(),
               omp_get_max_threads() > 1 ? "s" : "");
        fflush(stdout);
    }

    feed_progress prog;
    double run_t0 = feed_now_seconds();
    int64_t first_epoch = t.epoch;
    bool stopped = false;
    while (t.epoch < cfg->train.epochs) {
        double e0 = feed_now_seconds(), tl, te, img_s;
        double lr = feed_lr_at_step(&t.sched, (int)t.epoch, t.global_step);
        train_epoch(&t, &prog, &tl, &te, &img_s, &stopped);
        if (stopped) break;
        t.epoch++;
        t.step_in_epoch = 0;
        feed_epoch_metrics m = {.epoch = t.epoch, .step = t.global_step, .lr = lr, .train_loss = tl,
                                .train_error = te, .test_loss = NAN, .test_error = NAN, .img_per_s = img_s};
        if (t.ext && t.ext->epoch_metrics)
            m.n_extra = t.ext->epoch_metrics(t.ext->self, m.extra_name, m.extra, FEED_METRICS_MAX_EXTRA);
        if (t.rep && m.n_extra < FEED_METRICS_MAX_EXTRA) {
            m.extra_name[m.n_extra] = "allreduce_wait_s";
            m.extra[m.n_extra++] = t.allreduce_wait_s;
            t.allreduce_wait_s = 0;
        }
        if (t.rep) { /* the extension's figures and the waits: means over the replicas */
            feed_replicas_sum(t.rep, m.extra, m.n_extra);
            for (int i = 0; i < m.n_extra; i++) m.extra[i] /= t.replicas;
        }
        if (t.skip && m.n_extra < FEED_METRICS_MAX_EXTRA) {
            m.extra_name[m.n_extra] = "skipped_steps";
            m.extra[m.n_extra++] = (double)t.skipped_epoch;
        }
        t.skipped_epoch = 0;
        bool evaluate = t.writer && (t.epoch % cfg->train.eval_every == 0 || t.epoch == cfg->train.epochs);
        if (evaluate) {
            feed_eval_result r = feed_evaluate(t.net, t.test_ld, t.classes, NULL);
            m.test_loss = r.loss;
            m.test_error = r.error;
        }
        bool best = evaluate && m.test_error < t.best_error;
        if (best) t.best_error = m.test_error;
        m.seconds = feed_now_seconds() - e0;
        if (log) feed_metrics_append(log, job->rank, &m);
        double per_epoch = (feed_now_seconds() - run_t0) / (double)(t.epoch - first_epoch);
        if (t.writer)
            feed_report_epoch(&m, cfg->train.epochs, per_epoch * (double)(cfg->train.epochs - t.epoch), job->label,
                              t.report_comm);
        if (!t.writer && (t.epoch % cfg->checkpoint.every == 0 || t.epoch == cfg->train.epochs)) {
            char *p = feed_ckpt_dir_path(cfg->run.dir, job->prefix, t.epoch, t.global_step);
            snprintf(t.last_ckpt, sizeof t.last_ckpt, "%s", p); /* replica 0 wrote it */
            free(p);
        } else if (t.epoch % cfg->checkpoint.every == 0 || t.epoch == cfg->train.epochs) {
            save_periodic(&t);
            if (best && cfg->checkpoint.keep_best) {
                char *p = feed_ckpt_dir_path(cfg->run.dir, job->prefix, t.epoch, t.global_step);
                feed_ckpt_dir_save_best(cfg->run.dir, job->prefix, p);
                free(p);
            }
        }
        if (t.ext && t.ext->epoch_end) t.ext->epoch_end(t.ext->self, t.net, t.epoch);
        if (t.epoch < cfg->train.epochs && feed_signals_agree_stop(job->comm)) {
            stopped = true;
            break;
        }
    }
    /* Release peers (teacher ranks) before the last checkpoint, so they are not held. */
    if (t.ext && t.ext->finish) t.ext->finish(t.ext->self);
    if (stopped && t.writer) {
        save_periodic(&t);
        feed_metrics_event(log, job->rank, "stopped", t.epoch, t.global_step);
        if (job->rank == 0)
            printf("%s%sstop signal received: checkpoint written at epoch %lld + %lld steps (step %lld); "
                   "run the same command to resume\n",
                   job->label ? job->label : "", job->label ? ": " : "", (long long)t.epoch, (long long)t.step_in_epoch, (long long)t.global_step);
    } else if (job->final_path && t.writer && !stopped) {
        save(&t, job->final_path);
    }
    if (log) feed_metrics_close(log);
    teardown(&t);
    return 0;
}
