/* cache_job.c - run.mode = cache (distill.h): this rank's teachers over V augmented views of
 * every selected training sample, written to their feature caches (feature_cache.h).
 *
 * View v is the loader's augmentation of epoch v (seed feed_cache_seed), in file order: batch
 * s of view v is rows s*B .. s*B+n-1. The teacher forward runs on this thread; the HDF5 writes
 * of the batch before run meanwhile on a writer thread (two slots), so writing costs little
 * more than the forward. Progress is recorded every few seconds: an interrupted job resumes
 * at the last recorded row; SIGTERM/SIGUSR1 stop it there cleanly. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/distill_term.h"
#include "feed/feature_cache.h"
#include "feed/feature_transport.h"
#include "feed/metrics.h"
#include "feed/signals.h"
#include "feed/teacher.h"
#include "feed/train.h"

#define WRITE_HINT "is the disk full or over quota? Free space and run the same command: it resumes"

/* ---- the writer thread: two slots, filled here, written there ---- */

typedef struct {
    float *payload;   /* a teacher payload of batch B */
    int32_t *augment; /* (B, 3) */
    int v, n;
    int64_t row0, rows_done; /* rows_done: the view-major progress once this slot is written */
    int full;
} slot;

typedef struct {
    feed_cache *cache;
    slot s[2];
    int next_fill, next_write, stop, failed; /* failed: a write failed (feed_cache_error) */
    double last_progress, write_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->s[w->next_write].full && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->s[w->next_write].full) { /* stop and nothing left */
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        slot *sl = &w->s[w->next_write];
        pthread_mutex_unlock(&w->mu);
        double t0 = feed_now_seconds();
        int st = feed_cache_write_rows(w->cache, sl->v, sl->row0, sl->n, sl->payload, sl->augment);
        if (st == 0 && feed_now_seconds() - w->last_progress > 5.0) {
            st = feed_cache_set_progress(w->cache, sl->rows_done);
            w->last_progress = feed_now_seconds();
        }
        w->write_s += feed_now_seconds() - t0;
        pthread_mutex_lock(&w->mu);
        if (st < 0) { /* the main thread reports it; nothing more is written */
            w->failed = 1;
            w->s[0].full = w->s[1].full = 0;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        sl->full = 0;
        w->next_write ^= 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

/* A failed write ends the job here, on the main thread. */
static void report_failure(writer *w) {
    if (w->failed) FEED_FAIL(WRITE_HINT, "%s", feed_cache_error(w->cache));
}

/* The next free slot (waits for the writer); the caller fills it and calls slot_ready. */
static slot *slot_take(writer *w) {
    pthread_mutex_lock(&w->mu);
    while (w->s[w->next_fill].full && !w->failed) pthread_cond_wait(&w->cv, &w->mu);
    slot *sl = &w->s[w->next_fill];
    int failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    if (failed) {
        pthread_join(w->thread, NULL);
        report_failure(w);
    }
    return sl;
}

static void slot_ready(writer *w, slot *sl) {
    pthread_mutex_lock(&w->mu);
    sl->full = 1;
    w->next_fill ^= 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits until every filled slot is written, then ends the thread. */
static void writer_finish(writer *w) {
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    report_failure(w);
}

/* ---- one teacher ---- */

typedef struct {
    const feed_config *cfg;
    feed_dataset *ds;
    feed_loader *ld;          /* file order, the views' augmentation */
    const int64_t *samples;   /* selected file indices */
    int64_t n_samples, steps;
    int B, outputs;
    float *x;
    int32_t *y;
    int64_t *idx;
} job;

/* Whether path is a complete cache of spec (then it is kept). */
static bool up_to_date(const char *path, const feed_cache_spec *spec) {
    if (access(path, R_OK) != 0) return false;
    char why[600];
    return feed_cache_is(path, spec, why, sizeof why);
}

/* Writes teacher k's cache; returns false when a stop signal ended it early. */
static bool write_teacher(job *J, int k, int rank) {
    const feed_config *cfg = J->cfg;
    feed_teacher *t = feed_teacher_open(cfg, k, J->ds, J->outputs, J->B);
    const feed_teacher_layout *layout = feed_teacher_get_layout(t);
    feed_cache_spec spec = feed_cache_spec_of(cfg, k, J->ds, layout, J->n_samples);
    char *path = feed_cache_path(cfg, k);
    int V = cfg->cache.views;
    if (up_to_date(path, &spec)) {
        printf("cache: teacher %d: %s is complete and matches: kept\n", k + 1, path);
        fflush(stdout);
        feed_teacher_free(t);
        free(path);
        return true;
    }
    int64_t rows_done = 0;
    writer w = {0};
    w.cache = feed_cache_create(path, &spec, J->samples, &rows_done);
    size_t floats = feed_teacher_payload_elems(layout);
    for (int i = 0; i < 2; i++) {
        w.s[i].payload = feed_xaligned(floats * sizeof(float), "cache payload");
        w.s[i].augment = feed_xmalloc(sizeof(int32_t) * 3 * (size_t)J->B, "cache augmentation");
    }
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.last_progress = feed_now_seconds();
    pthread_create(&w.thread, NULL, writer_main, &w);
    if (rows_done > 0)
        printf("cache: teacher %d: resuming %s.partial at row %lld of %lld\n", k + 1, path, (long long)rows_done,
               (long long)V * J->n_samples);
    printf("cache: teacher %d (rank %d): %s -> %s, %d views x %lld samples, %.1f MB\n", k + 1, rank,
           cfg->distill.teachers.v[k], path, V, (long long)J->n_samples, (double)feed_cache_bytes(&spec) / 1e6);
    fflush(stdout);

    double t0 = feed_now_seconds(), forward_s = 0;
    int64_t rows = 0, done = rows_done;
    bool stopped = false;
    for (int v = 0; v < V && !stopped; v++)
        for (int64_t s = 0; s < J->steps; s++) {
            int64_t row0 = s * J->B;
            int n = (int)(J->n_samples - row0 < J->B ? J->n_samples - row0 : J->B);
            if ((int64_t)v * J->n_samples + row0 + n <= rows_done) continue; /* written before */
            if (feed_signals_pending()) {
                stopped = true;
                break;
            }
            feed_loader_batch(J->ld, v, s, J->x, J->y);
            feed_loader_batch_indices(J->ld, v, s, J->idx);
            slot *sl = slot_take(&w);
            double f0 = feed_now_seconds();
            feed_teacher_compute(t, J->x, sl->payload);
            forward_s += feed_now_seconds() - f0;
            for (int j = 0; j < n; j++) {
                feed_augment_params a = feed_loader_augment_of(J->ld, v, J->idx[j]);
                sl->augment[3 * j] = a.dy, sl->augment[3 * j + 1] = a.dx, sl->augment[3 * j + 2] = a.flip;
            }
            sl->v = v, sl->row0 = row0, sl->n = n;
            done = (int64_t)v * J->n_samples + row0 + n;
            sl->rows_done = done;
            slot_ready(&w, sl);
            rows += n;
        }
    writer_finish(&w);
    double wall = feed_now_seconds() - t0;
    for (int i = 0; i < 2; i++) free(w.s[i].payload), free(w.s[i].augment);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (stopped) {
        if (feed_cache_set_progress(w.cache, done) < 0) FEED_FAIL(WRITE_HINT, "%s", feed_cache_error(w.cache));
        feed_cache_close(w.cache);
        printf("cache: teacher %d: stop signal: %lld of %lld rows written to %s.partial; run the same command to "
               "resume\n", k + 1, (long long)done, (long long)V * J->n_samples, path);
    } else {
        if (feed_cache_set_progress(w.cache, done) < 0) FEED_FAIL(WRITE_HINT, "%s", feed_cache_error(w.cache));
        feed_cache_commit(w.cache);
        printf("cache: teacher %d: %s written: %lld rows in %.1f s, %.0f img/s (teacher forward alone %.0f img/s, "
               "writes %.1f s on the writer thread)\n", k + 1, path, (long long)rows, wall, wall > 0 ? rows / wall : 0,
               forward_s > 0 ? rows / forward_s : 0, w.write_s);
    }
    fflush(stdout);
    feed_teacher_free(t);
    free(path);
    return !stopped;
}

int feed_cache_rank(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    feed_signals_install();
    job J = {.cfg = cfg, .B = cfg->train.batch, .outputs = feed_terms_outputs(cfg)};
    J.ds = feed_dataset_open(cfg->data.path);
    feed_loader_config lc = feed_train_loader_config(cfg, J.B, feed_cache_seed(cfg));
    lc.shuffle = false, lc.drop_last = false, lc.augment_views = 0;
    J.ld = feed_loader_create(J.ds, &lc);
    J.samples = feed_loader_selected(J.ld, &J.n_samples);
    J.steps = feed_loader_steps_per_epoch(J.ld);
    J.x = feed_xaligned(sizeof(float) * (size_t)J.B * J.ds->channels * J.ds->height * J.ds->width, "input batch");
    J.y = feed_xmalloc(sizeof(int32_t) * (size_t)J.B, "labels");
    J.idx = feed_xmalloc(sizeof(int64_t) * (size_t)J.B, "indices");
    bool all = true;
    for (int k = ctx->rank; k < cfg->distill.teachers.n && all; k += ctx->size) all = write_teacher(&J, k, ctx->rank);
    free(J.x), free(J.y), free(J.idx);
    feed_loader_destroy(J.ld);
    feed_dataset_close(J.ds);
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    if (ctx->rank == 0 && all) {
        printf("cache: done; students use it with distill.source = cache, cache.dir = %s\n", cfg->cache.dir);
        fflush(stdout);
    }
    return 0;
}

void feed_cache_check(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *student) {
    (void)student;
    int outputs = feed_terms_outputs(cfg);
    feed_loader_config lc = feed_train_loader_config(cfg, cfg->train.batch, feed_cache_seed(cfg));
    lc.shuffle = false, lc.drop_last = false, lc.prefetch_depth = 0;
    feed_loader *ld = feed_loader_create(ds, &lc);
    int64_t n = 0;
    feed_loader_selected(ld, &n);
    uint64_t total = 0;
    for (int k = 0; k < cfg->distill.teachers.n; k++) {
        feed_teacher_layout l = feed_teacher_layout_from_file(cfg, k, ds, outputs, cfg->train.batch);
        feed_cache_spec spec = feed_cache_spec_of(cfg, k, ds, &l, n);
        char *path = feed_cache_path(cfg, k), what[256], partial[4200];
        snprintf(partial, sizeof partial, "%s.partial", path);
        const char *state = access(path, F_OK) == 0 ? (up_to_date(path, &spec) ? "exists and matches: kept"
                                                                                : "exists but differs: written anew")
                            : access(partial, F_OK) == 0 ? "an unfinished .partial: resumed if it matches"
                                                         : "new";
        printf("cache    %d: %s (%s): %s, %d views x %lld samples, %s, %.1f MB\n", k + 1, path, state,
               feed_teacher_outputs_str(&l, what, sizeof what), cfg->cache.views, (long long)n,
               feed_wire_dtype_name((feed_wire_dtype)cfg->cache.dtype), (double)feed_cache_bytes(&spec) / 1e6);
        total += feed_cache_bytes(&spec);
        free(path);
    }
    printf("cache    total %.1f MB in %s (%.1f KB per sample and view)\n", (double)total / 1e6, cfg->cache.dir,
           n ? (double)total / 1e3 / (double)n / cfg->cache.views : 0);
    feed_loader_destroy(ld);
}
