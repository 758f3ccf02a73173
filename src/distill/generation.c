/* generation.c - one rank of run.mode = sfeed (sfeed.h): it trains generation g with the
 * ordinary training loop. Its extension adds, around the distill student of generation g
 * (student.c, with generation g-1 as its one in-process teacher):
 *   consumer (g learns from g-1's rank): before each epoch, the version of g-1's weights the
 *            schedule names goes into the teacher network (waiting for it if need be);
 *   producer (g+1 exists): after each epoch, g's weights go to g+1's rank when it asks.
 * Generation 0 trained in the job is a producer only (cross-entropy); generation 1 learns
 * from sfeed.teacher when it is given. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/metrics.h"
#include "feed/sfeed.h"
#include "feed/signals.h"
#include "feed/teacher.h"
#include "feed/teacher_source.h"
#include "feed/train.h"
#include "feed/weights_channel.h"

int feed_sfeed_version(int64_t epoch, int lag_epochs, int epochs) {
    if (lag_epochs <= 0) return epochs;
    int64_t v = lag_epochs + epoch;
    return (int)(v < epochs ? v : epochs);
}

typedef struct {
    const feed_config *cfg;
    int g, rank;            /* this rank's generation */
    MPI_Comm replicas;      /* the generation's ranks (distill.student_ranks = P); replica 0
                               does the weights channel and shares what it receives */
    int replica, P;
    int prev_rank, next_rank; /* ranks of g-1 and g+1, -1 when there is none */
    int E, L;
    int64_t steps_per_epoch;
    MPI_Comm wcomm;
    feed_dataset *ds;
    char prefix[32], label[32];
    feed_ckpt_meta meta;    /* of the snapshot files */
    char arch[64];
    /* learning from g-1 */
    feed_distill_student *d;   /* NULL for generation 0 */
    feed_train_extension inner;
    feed_net *teacher_net;     /* inside the source */
    feed_weights_consumer *in; /* NULL when the teacher is a file */
    int applied;               /* version in teacher_net; a file teacher: its epoch */
    int keep_from;
    int epoch_version;         /* version learned from in the epoch under way */
    double epoch_wait_s;       /* seconds the epoch waited for that version */
    /* teaching g+1 */
    feed_net *student;
    feed_weights_producer *out;
} generation;

static feed_model_spec student_spec(const generation *G, int batch) {
    return feed_model_spec_from_config(G->cfg, G->ds, batch);
}

/* The one teacher of generation g: generation 0's file for g = 1 when given, else a network
 * of [model] whose weights arrive from g-1's rank. */
static feed_teacher_source *make_source(void *ctx, int outputs, int batch) {
    generation *G = ctx;
    const feed_config *cfg = G->cfg;
    feed_net *net;
    if (G->prev_rank < 0 || G->replica > 0) { /* replicas > 0 get the weights from replica 0 */
        if (G->prev_rank >= 0) {
            feed_model_spec spec = student_spec(G, batch);
            G->teacher_net = feed_model_create(&spec, 0, true);
            feed_teacher *t = feed_teacher_wrap(G->teacher_net, outputs);
            return feed_source_local_from(cfg, &t, 1, (uint64_t)cfg->run.seed + (uint64_t)G->g, batch, G->replica,
                                          G->P);
        }
        net = feed_teacher_load_net(cfg->sfeed.teacher, G->ds, cfg->data.path, batch);
        feed_ckpt *ck = feed_ckpt_open(cfg->sfeed.teacher);
        G->applied = (int)feed_ckpt_get_meta(ck)->epoch;
        feed_ckpt_close(ck);
    } else {
        feed_model_spec spec = student_spec(G, batch);
        net = feed_model_create(&spec, 0, true);
        feed_weights_consumer_config cc = {.comm = G->wcomm, .producer_rank = G->prev_rank,
                                           .producer_generation = G->g - 1, .bytes = feed_net_snapshot_bytes(net),
                                           .timeout_s = cfg->transport.timeout};
        G->in = feed_weights_consumer_create(&cc);
    }
    G->teacher_net = net;
    feed_teacher *t = feed_teacher_wrap(net, outputs);
    return feed_source_local_from(cfg, &t, 1, (uint64_t)cfg->run.seed + (uint64_t)G->g, batch, G->replica, G->P);
}

static void poll_producer(void *ctx) {
    generation *G = ctx;
    if (G->out) feed_weights_producer_poll(G->out);
}

/* ---- the extension: the distill student's callbacks, plus both roles ---- */

static void on_setup(void *self, feed_net *student, feed_sgd *sgd) {
    generation *G = self;
    G->student = student;
    if (G->d) G->inner.setup(G->inner.self, student, sgd);
}

static void on_save(void *self, feed_ckpt_writer *w) {
    generation *G = self;
    if (G->d) G->inner.save(G->inner.self, w);
}

static void on_restore(void *self, const feed_ckpt *ck) {
    generation *G = self;
    if (G->d) G->inner.restore(G->inner.self, ck);
}

static void on_start(void *self, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    generation *G = self;
    if (G->d) G->inner.start(G->inner.self, epoch, step_in_epoch, global_step);
    G->keep_from = feed_sfeed_version(epoch, G->L, G->E);
    if (G->next_rank >= 0 && G->replica == 0) {
        feed_weights_producer_config pc = {
            .comm = G->wcomm, .consumer_rank = G->next_rank, .generation = G->g, .net = G->student,
            .dir = G->cfg->run.dir, .prefix = G->prefix, .meta = &G->meta,
            /* the versions generation g+1 can ask for */
            .first_version = feed_sfeed_version(0, G->L, G->E), .last_version = G->E,
            .completed = epoch, .steps_per_epoch = G->steps_per_epoch};
        G->out = feed_weights_producer_create(&pc);
    }
}

/* Replica 0's teacher weights (version v) on every replica of the generation; whether they
 * came (false: a stop signal). */
static bool share_teacher(generation *G, bool got, int v) {
    if (G->P == 1) return got;
    int ok = got;
    CHECK_MPI(MPI_Bcast(&ok, 1, MPI_INT, 0, G->replicas));
    if (!ok) return false;
    size_t bytes = feed_net_snapshot_bytes(G->teacher_net);
    void *buf = feed_xmalloc(bytes, "teacher weights"); /* once per version, not per step */
    if (G->replica == 0) feed_net_snapshot_get(G->teacher_net, buf);
    for (size_t at = 0; at < bytes; at += (size_t)1 << 30) {
        size_t n = bytes - at < ((size_t)1 << 30) ? bytes - at : (size_t)1 << 30;
        CHECK_MPI(MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, 0, G->replicas));
    }
    if (G->replica > 0) feed_net_snapshot_set(G->teacher_net, buf);
    free(buf);
    G->applied = v;
    return true;
}

static bool on_epoch_begin(void *self, int64_t epoch) {
    generation *G = self;
    G->epoch_version = G->applied;
    G->epoch_wait_s = 0;
    if (G->prev_rank < 0) return true; /* a file teacher */
    int v = feed_sfeed_version(epoch, G->L, G->E);
    if (G->replica > 0) { /* replica 0 receives, then shares */
        double t0 = feed_now_seconds();
        if (v != G->applied && !share_teacher(G, false, v)) return false;
        G->epoch_wait_s = feed_now_seconds() - t0;
        G->epoch_version = v;
        return true;
    }
    if (v != G->applied) {
        if (feed_weights_consumer_wanted(G->in) < 0) feed_weights_consumer_want(G->in, v, G->keep_from);
        FEED_CHECK(feed_weights_consumer_wanted(G->in) == v, "this is a bug", "generation %d wanted version %d, needs %d",
                   G->g, feed_weights_consumer_wanted(G->in), v);
        const void *bytes;
        double t0 = feed_now_seconds();
        bool got = feed_weights_consumer_get(G->in, &bytes, poll_producer, G);
        G->epoch_wait_s = feed_now_seconds() - t0;
        if (got) feed_net_snapshot_set(G->teacher_net, bytes);
        if (!share_teacher(G, got, v)) return false; /* a stop signal */
        G->applied = v;
        if (v < G->E) feed_weights_consumer_want(G->in, v + 1, G->keep_from); /* the next, in the background */
    }
    G->epoch_version = v;
    return true;
}

static void on_add_loss(void *self, feed_net *student, int64_t step, const int64_t *idx, int n, const float *logits,
                        float *dlogits) {
    generation *G = self;
    if (G->d) G->inner.add_loss(G->inner.self, student, step, idx, n, logits, dlogits);
}

static bool on_step_nonfinite(void *self, char *what, size_t cap) {
    generation *G = self;
    return G->d && G->inner.step_nonfinite(G->inner.self, what, cap);
}

static void on_step_end(void *self, int64_t global_step, bool kept) {
    generation *G = self;
    if (G->d) G->inner.step_end(G->inner.self, global_step, kept);
    if (G->out) feed_weights_producer_poll(G->out);
    if (G->in) feed_weights_consumer_poll(G->in);
}

static int on_modules(void *self, feed_net **out, int max) {
    generation *G = self;
    return G->d ? G->inner.modules(G->inner.self, out, max) : 0;
}

static void on_progress(void *self, char *buf, size_t cap) {
    generation *G = self;
    if (G->d) G->inner.progress(G->inner.self, buf, cap);
}

static int on_epoch_metrics(void *self, const char **names, double *values, int max) {
    generation *G = self;
    int m = G->d ? G->inner.epoch_metrics(G->inner.self, names, values, max) : 0;
    if (G->d && m + 3 <= max) {
        names[m] = "teacher_gen", values[m++] = G->g - 1;
        names[m] = "teacher_epoch", values[m++] = G->epoch_version;
        names[m] = "teacher_wait_s", values[m++] = G->epoch_wait_s;
    }
    return m;
}

static void on_epoch_end(void *self, feed_net *student, int64_t epoch) {
    generation *G = self;
    (void)student;
    if (G->out) feed_weights_producer_epoch_end(G->out, epoch);
    const feed_config *cfg = G->cfg;
    if (epoch % cfg->checkpoint.every == 0 || epoch == G->E) /* its checkpoint was written */
        G->keep_from = feed_sfeed_version(epoch < G->E ? epoch : G->E - 1, G->L, G->E);
}

static void on_finish(void *self) {
    generation *G = self;
    if (G->d) G->inner.finish(G->inner.self);
    if (G->in) feed_weights_consumer_finish(G->in, poll_producer, G);
}

/* ---- the rank ---- */

static void setup_generation(generation *G, const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    int from_file = cfg->sfeed.teacher != NULL;
    G->cfg = cfg;
    G->rank = ctx->rank;
    G->P = cfg->distill.student_ranks;
    int slot = ctx->rank / G->P; /* generations on ranks slot*P .. slot*P+P-1 */
    G->replica = ctx->rank % G->P;
    G->g = from_file ? slot + 1 : slot;
    /* the weights channel runs between the replicas 0 of neighbouring generations */
    G->prev_rank = slot >= 1 ? (slot - 1) * G->P : -1;
    G->next_rank = (slot + 1) * G->P < ctx->size ? (slot + 1) * G->P : -1;
    G->E = cfg->train.epochs;
    G->L = cfg->sfeed.lag_epochs;
    G->applied = -1;
    snprintf(G->prefix, sizeof G->prefix, "gen%d", G->g);
    snprintf(G->label, sizeof G->label, "gen %d", G->g);
    G->ds = feed_dataset_open(cfg->data.path);
    feed_loader_config lc = feed_train_loader_config(cfg, cfg->train.batch, (uint64_t)cfg->run.seed + (uint64_t)G->g);
    lc.prefetch_depth = 0;
    feed_loader *ld = feed_loader_create(G->ds, &lc);
    G->steps_per_epoch = feed_loader_steps_per_epoch(ld);
    feed_loader_destroy(ld);
    feed_model_spec spec = student_spec(G, cfg->train.batch);
    feed_model_name(&spec, G->arch, sizeof G->arch);
    G->meta = (feed_ckpt_meta){.arch = G->arch, .dataset = G->ds->name, .num_classes = G->ds->num_classes,
                               .in_channels = G->ds->channels, .seed = cfg->run.seed + G->g,
                               .config_ini = cfg->ini_text};
}

static void print_layout(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    int from_file = cfg->sfeed.teacher != NULL;
    printf("sfeed: %d generations, %s (%s)\n", cfg->sfeed.generations,
           cfg->sfeed.lag_epochs ? feed_fmt("pipelined: lag %d epochs", cfg->sfeed.lag_epochs)
                                 : "strict: each generation after the one before",
           cfg->sfeed.lag_epochs ? feed_fmt("epoch e learns from the generation before after its epoch min(%d + e, %d)",
                                            cfg->sfeed.lag_epochs, cfg->train.epochs)
                                 : "every epoch learns from the finished generation before");
    int P = cfg->distill.student_ranks;
    for (int r = 0; r < ctx->size; r += P) {
        int g = from_file ? r / P + 1 : r / P;
        const char *ranks = P > 1 ? feed_fmt("ranks %d-%d (%d replicas)", r, r + P - 1, P) : feed_fmt("rank %d", r);
        if (g == 0)
            printf("sfeed: %s trains generation 0 (cross-entropy, seed %d)\n", ranks, cfg->run.seed);
        else
            printf("sfeed: %s trains generation %d (seed %d) from %s\n", ranks, g, cfg->run.seed + g,
                   g == 1 && from_file ? cfg->sfeed.teacher
                                       : feed_fmt("generation %d (rank %d)", g - 1, r - P));
    }
    fflush(stdout);
}

int feed_sfeed_rank(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    generation G = {0};
    setup_generation(&G, ctx);
    if (ctx->rank == 0) print_layout(ctx);
    G.wcomm = feed_weights_comm(MPI_COMM_WORLD);
    G.replicas = MPI_COMM_SELF;
    if (G.P > 1) CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, ctx->rank / G.P, ctx->rank, &G.replicas));
    if (G.g >= 1) {
        feed_distill_spec spec = {.cfg = cfg, .terms = &cfg->sfeed.terms, .n_teachers = 1,
                                  .seed = (uint64_t)cfg->run.seed + (uint64_t)G.g, .make_source = make_source,
                                  .source_ctx = &G};
        G.d = feed_distill_student_create(&spec);
        G.inner = feed_distill_student_extension(G.d);
    }
    feed_train_extension ext = {
        .self = &G,
        .ce_weight = G.d ? G.inner.ce_weight : 1.0,
        .setup = on_setup,
        .save = on_save,
        .restore = on_restore,
        .start = on_start,
        .epoch_begin = on_epoch_begin,
        .add_loss = on_add_loss,
        .step_nonfinite = on_step_nonfinite,
        .step_end = on_step_end,
        .progress = on_progress,
        .modules = on_modules,
        .epoch_metrics = on_epoch_metrics,
        .epoch_end = on_epoch_end,
        .finish = on_finish,
    };
    char final_path[4200];
    snprintf(final_path, sizeof final_path, "%s/gen%d.h5", cfg->run.dir, G.g);
    feed_train_job job = {
        .cfg = cfg,
        .comm = G.replicas, /* each generation trains alone (on its replicas), on its own schedule */
        .rank = G.replica,
        .size = G.P,
        .replicas = G.replicas,
        .sync_bn = cfg->distill.sync_bn,
        .seed = (uint64_t)cfg->run.seed + (uint64_t)G.g,
        .prefix = G.prefix,
        .final_path = final_path,
        .label = G.label,
        .ext = &ext,
    };
    int rc = feed_train_run(&job);
    if (G.out) feed_weights_producer_serve_until_finish(G.out); /* generation g+1 may still need weights */
    feed_weights_producer_free(G.out);
    feed_weights_consumer_free(G.in);
    feed_distill_student_free(G.d);
    feed_dataset_close(G.ds);
    CHECK_MPI(MPI_Comm_free(&G.wcomm));
    if (G.P > 1) CHECK_MPI(MPI_Comm_free(&G.replicas));
    return rc;
}
