/* source_cache.c - teacher outputs read from feature caches (teacher_source.h, distill.source
 * = cache; format in feature_cache.h). Step t of epoch e is the student's minibatch: for each
 * of its samples, row samples^-1[i] of view e mod V in every teacher's cache. The stored
 * augmentation of each row is checked against the one the student's loader applied (its
 * config replays the cache's views: feed_train_loader_config), so a student never trains on
 * outputs of another crop. A background thread reads step t + 1 while the student computes
 * step t (two payload buffers per teacher). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/distill_term.h"
#include "feed/feature_cache.h"
#include "feed/metrics.h"
#include "feed/teacher.h"
#include "feed/teacher_source.h"
#include "feed/train.h"

typedef struct {
    feed_teacher_source base;
    const feed_config *cfg;
    feed_dataset *ds;
    feed_loader *ld;          /* the student's batches (indices and augmentation only) */
    int64_t steps;            /* per epoch */
    int n, B, V;
    feed_cache **cache;       /* [n] */
    int64_t *row_of;          /* [training images of the file]: cache row, -1 if not cached */
    float **payload[2];       /* [buffer][n] */
    int64_t *idx;             /* (B) file indices of the step's samples */
    int64_t *rows;            /* (B) their cache rows */
    int32_t *aug;             /* (B, 3) stored augmentation */
    int64_t buffered[2];      /* step held by each buffer, -1 none */
    uint64_t batch_id[2];
    /* the read-ahead thread */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t ahead;            /* step the thread is asked to read, -1 none */
    int busy, quit;
} cache_source;

/* Reads global step `step` into buffer b (whichever thread runs it, never both at once). */
static void read_step(cache_source *p, int64_t step, int b) {
    int64_t e = step / p->steps, s = step % p->steps;
    int got = feed_loader_batch_indices(p->ld, e, s, p->idx);
    int v = (int)(e % p->V);
    for (int j = 0; j < got; j++) p->rows[j] = p->row_of[p->idx[j]];
    for (int k = 0; k < p->n; k++) {
        feed_cache_read_rows(p->cache[k], v, p->rows, got, p->payload[b][k], p->aug);
        for (int j = 0; j < got; j++) {
            feed_augment_params want = feed_loader_augment_of(p->ld, e, p->idx[j]);
            const int32_t *a = p->aug + 3 * j;
            if (a[0] != want.dy || a[1] != want.dx || a[2] != (int)want.flip)
                FEED_INPUT_ERROR("write the cache again with this job's [data] settings (docs/cache.md)",
                                 "feature cache of teacher %d: sample %lld of view %d was stored with crop (%d, %d) "
                                 "flip %d, the student's loader gives crop (%d, %d) flip %d", k + 1, (long long)p->idx[j],
                                 v, a[0], a[1], a[2], want.dy, want.dx, (int)want.flip);
        }
    }
    p->buffered[b] = step;
    p->batch_id[b] = feed_batch_id(p->idx, got);
}

static void *reader_main(void *arg) {
    cache_source *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->ahead < 0 && !p->quit) pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit) break;
        int64_t step = p->ahead;
        p->busy = 1;
        pthread_mutex_unlock(&p->mu);
        read_step(p, step, (int)(step & 1));
        pthread_mutex_lock(&p->mu);
        p->busy = 0;
        p->ahead = -1;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Waits for the read-ahead in flight, if any. */
static void wait_reader(cache_source *p) {
    pthread_mutex_lock(&p->mu);
    while (p->ahead >= 0 || p->busy) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void cache_start(feed_teacher_source *s, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    (void)s, (void)epoch, (void)step_in_epoch, (void)global_step;
}

static const float *cache_get(feed_teacher_source *s, int k, int64_t step, uint64_t batch_id, double *waited_s) {
    cache_source *p = (cache_source *)s;
    int b = (int)(step & 1);
    double t0 = feed_now_seconds();
    wait_reader(p); /* the read-ahead in flight is this step's */
    if (p->buffered[b] != step) read_step(p, step, b); /* not read ahead (the first step, a resume) */
    if (waited_s) *waited_s = feed_now_seconds() - t0;
    FEED_CHECK(p->batch_id[b] == batch_id, "this is a bug",
               "the feature cache was read for another minibatch than the student's at step %lld", (long long)step);
    return p->payload[b][k];
}

/* The student is done with `step`: read step + 1 into the other buffer meanwhile. */
static void cache_release(feed_teacher_source *s, int64_t step) {
    cache_source *p = (cache_source *)s;
    pthread_mutex_lock(&p->mu);
    if (p->ahead < 0 && !p->busy) {
        p->ahead = step + 1;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

static void cache_finish(feed_teacher_source *s) { wait_reader((cache_source *)s); }

static void cache_destroy(feed_teacher_source *s) {
    cache_source *p = (cache_source *)s;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    for (int k = 0; k < p->n; k++) {
        feed_cache_close(p->cache[k]);
        free(p->payload[0][k]), free(p->payload[1][k]);
    }
    free(p->payload[0]), free(p->payload[1]), free(p->cache), free(p->row_of), free(p->idx), free(p->rows), free(p->aug), free(s->layouts);
    feed_loader_destroy(p->ld);
    feed_dataset_close(p->ds);
    free(p);
}

static const feed_teacher_source_ops cache_ops = {cache_start, cache_get, cache_release, cache_finish, cache_destroy};

/* Maps file indices to cache rows (the first cache's; all caches of a job hold the same
 * samples, as checked here) and checks that every sample the student trains on has a row in c. */
static void check_samples_cached(cache_source *p, feed_cache *c, int k) {
    int64_t n_cached = 0, n_sel = 0, total = p->ds->split[FEED_SPLIT_TRAIN].n;
    const int64_t *cached = feed_cache_samples(c, &n_cached);
    if (!p->row_of) {
        p->row_of = feed_xmalloc(sizeof(int64_t) * (size_t)total, "cache rows");
        for (int64_t i = 0; i < total; i++) p->row_of[i] = -1;
        for (int64_t r = 0; r < n_cached; r++)
            if (cached[r] >= 0 && cached[r] < total) p->row_of[cached[r]] = r;
    }
    const int64_t *sel = feed_loader_selected(p->ld, &n_sel);
    for (int64_t j = 0; j < n_sel; j++) {
        int64_t r = p->row_of[sel[j]];
        if (r < 0 || r >= n_cached || cached[r] != sel[j])
            FEED_INPUT_ERROR("write the cache with this job's data.subset_* (docs/cache.md)",
                             "teacher %d: training sample %lld of this job is not in its feature cache (%lld samples "
                             "cached, this job trains on %lld)", k + 1, (long long)sel[j], (long long)n_cached,
                             (long long)n_sel);
    }
}

feed_teacher_source *feed_source_cache_create(const feed_config *cfg, int outputs, int batch, int replica,
                                              int replicas) {
    cache_source *p = feed_xcalloc(1, sizeof *p, "cache teacher source");
    int n = cfg->distill.teachers.n;
    p->base = (feed_teacher_source){.ops = &cache_ops, .n_teachers = n};
    p->base.layouts = feed_xcalloc((size_t)n, sizeof *p->base.layouts, "teacher layouts");
    p->cfg = cfg, p->n = n, p->B = batch, p->V = cfg->cache.views;
    p->ds = feed_dataset_open(cfg->data.path);
    feed_loader_config lc = feed_train_loader_config(cfg, batch, (uint64_t)cfg->run.seed);
    lc.prefetch_depth = 0;
    lc.shard_rank = replica, lc.shard_count = replicas; /* the student replica's rows */
    p->ld = feed_loader_create(p->ds, &lc);
    p->steps = feed_loader_steps_per_epoch(p->ld);
    p->idx = feed_xmalloc(sizeof(int64_t) * (size_t)batch, "indices");
    p->rows = feed_xmalloc(sizeof(int64_t) * (size_t)batch, "cache rows");
    p->aug = feed_xmalloc(3 * sizeof(int32_t) * (size_t)batch, "augmentation");
    p->cache = feed_xcalloc((size_t)n, sizeof *p->cache, "caches");
    p->payload[0] = feed_xcalloc((size_t)n, sizeof(float *), "payloads");
    p->payload[1] = feed_xcalloc((size_t)n, sizeof(float *), "payloads");
    for (int k = 0; k < n; k++) {
        /* what this job expects of teacher k's cache: its layout from the checkpoint itself */
        p->base.layouts[k] = feed_teacher_layout_from_file(cfg, k, p->ds, outputs, batch);
        int64_t n_sel = 0;
        feed_loader_selected(p->ld, &n_sel);
        feed_cache_spec want = feed_cache_spec_of(cfg, k, p->ds, &p->base.layouts[k], n_sel);
        char *path = feed_cache_path(cfg, k);
        p->cache[k] = feed_cache_open(path, &want, feed_fmt("teacher %d (%s)", k + 1, cfg->distill.teachers.v[k]));
        free(path);
        check_samples_cached(p, p->cache[k], k);
        size_t floats = feed_teacher_payload_elems(&p->base.layouts[k]);
        p->payload[0][k] = feed_xaligned(floats * sizeof(float), "teacher payload");
        p->payload[1][k] = feed_xaligned(floats * sizeof(float), "teacher payload");
    }
    p->buffered[0] = p->buffered[1] = -1;
    p->ahead = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_create(&p->thread, NULL, reader_main, p);
    return &p->base;
}
