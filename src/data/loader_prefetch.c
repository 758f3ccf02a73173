/* loader_prefetch.c - background threads that assemble the batches after the last one asked
 * for, into a ring of `depth` slots. A batch is a pure function of (epoch, step), so a thread
 * computes exactly what the caller would: prefetching changes timing, never results.
 *
 * Slot life: EMPTY -> FILLING (a thread claimed key = cursor) -> READY -> READING (caller
 * copies) -> EMPTY. A request that no slot holds bumps `generation`: stale slots are dropped
 * and the cursor restarts after the requested batch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "loader_internal.h"

enum slot_state { SLOT_EMPTY, SLOT_FILLING, SLOT_READY, SLOT_READING };

typedef struct batch_key {
    int64_t epoch, step;
} batch_key;

typedef struct prefetch_slot {
    enum slot_state state;
    batch_key key;
    uint64_t generation;
    int count;      /* samples in the batch */
    float *images;  /* B x C x H x W */
    int32_t *labels; /* B */
} prefetch_slot;

struct feed_prefetch {
    const feed_loader *ld;
    pthread_mutex_t mutex;
    pthread_cond_t changed; /* any slot state, the cursor or `stop` changed */
    prefetch_slot *slots;
    int depth;
    pthread_t *threads;
    int num_threads;
    batch_key cursor;   /* next batch to claim */
    bool cursor_valid;  /* false until the first request tells where the run is */
    uint64_t generation;
    bool stop;
};

static batch_key next_key(const feed_loader *ld, batch_key k) {
    if (++k.step == ld->steps) {
        k.step = 0;
        k.epoch++;
    }
    return k;
}

static bool key_before(batch_key a, batch_key b) {
    return a.epoch < b.epoch || (a.epoch == b.epoch && a.step < b.step);
}

static int find_slot(const feed_prefetch *pf, enum slot_state state) {
    for (int i = 0; i < pf->depth; i++)
        if (pf->slots[i].state == state) return i;
    return -1;
}

static void lock(feed_prefetch *pf) {
    int rc = pthread_mutex_lock(&pf->mutex);
    FEED_CHECK(rc == 0, "this is a bug", "pthread_mutex_lock failed (%d)", rc);
}
static void unlock(feed_prefetch *pf) { pthread_mutex_unlock(&pf->mutex); }
static void wait_change(feed_prefetch *pf) { pthread_cond_wait(&pf->changed, &pf->mutex); }
static void announce(feed_prefetch *pf) { pthread_cond_broadcast(&pf->changed); }

static void *prefetch_thread(void *arg) {
    feed_prefetch *pf = arg;
    feed_order_cache cache = {.epoch = -1, .n = 0, .perm = NULL};
    lock(pf);
    for (;;) {
        int i;
        while (!pf->stop && (!pf->cursor_valid || (i = find_slot(pf, SLOT_EMPTY)) < 0)) wait_change(pf);
        if (pf->stop) break;
        prefetch_slot *s = &pf->slots[i];
        s->state = SLOT_FILLING;
        s->key = pf->cursor;
        s->generation = pf->generation;
        if (s->key.epoch >= ((int64_t)1 << 31) - 1) pf->cursor_valid = false; /* end of epochs */
        pf->cursor = next_key(pf->ld, pf->cursor);
        unlock(pf);
        s->count = feed_loader_assemble(pf->ld, &cache, s->key.epoch, s->key.step, s->images, s->labels);
        lock(pf);
        s->state = s->generation == pf->generation ? SLOT_READY : SLOT_EMPTY;
        announce(pf);
    }
    unlock(pf);
    feed_order_cache_free(&cache);
    return NULL;
}

feed_prefetch *feed_prefetch_start(const feed_loader *ld, int depth, int threads) {
    feed_prefetch *pf = feed_xcalloc(1, sizeof *pf, "prefetcher");
    pf->ld = ld;
    pf->depth = depth;
    pf->num_threads = threads;
    pf->slots = feed_xcalloc((size_t)depth, sizeof *pf->slots, "prefetch slots");
    const size_t batch_floats = (size_t)ld->cfg.batch_size * (size_t)ld->sample_floats;
    for (int i = 0; i < depth; i++) {
        pf->slots[i].images = feed_xaligned(batch_floats * sizeof(float), "prefetched batch");
        pf->slots[i].labels = feed_xmalloc(sizeof(int32_t) * (size_t)ld->cfg.batch_size, "prefetched labels");
    }
    int rc = pthread_mutex_init(&pf->mutex, NULL);
    FEED_CHECK(rc == 0, "", "pthread_mutex_init failed (%d)", rc);
    rc = pthread_cond_init(&pf->changed, NULL);
    FEED_CHECK(rc == 0, "", "pthread_cond_init failed (%d)", rc);
    pf->threads = feed_xcalloc((size_t)threads, sizeof(pthread_t), "prefetch threads");
    for (int t = 0; t < threads; t++) {
        rc = pthread_create(&pf->threads[t], NULL, prefetch_thread, pf);
        FEED_CHECK(rc == 0, "lower prefetch_threads or raise the process limit",
                   "pthread_create for loader prefetch thread %d failed (%d)", t, rc);
    }
    return pf;
}

int feed_prefetch_take(feed_prefetch *pf, int64_t epoch, int64_t step, float *out_nchw,
                       int32_t *labels) {
    const batch_key want = {epoch, step};
    lock(pf);
    int found = -1;
    for (int i = 0; i < pf->depth; i++) {
        prefetch_slot *s = &pf->slots[i];
        if (s->state == SLOT_READY && key_before(s->key, want)) s->state = SLOT_EMPTY; /* skipped */
        bool live = s->state == SLOT_READY || s->state == SLOT_FILLING;
        if (live && s->generation == pf->generation && s->key.epoch == epoch && s->key.step == step)
            found = i;
    }
    if (found < 0) {
        /* Not prefetched: drop what is queued and restart after this batch. */
        pf->generation++;
        for (int i = 0; i < pf->depth; i++)
            if (pf->slots[i].state == SLOT_READY) pf->slots[i].state = SLOT_EMPTY;
        pf->cursor = next_key(pf->ld, want);
        pf->cursor_valid = true;
        announce(pf);
        unlock(pf);
        return -1;
    }
    prefetch_slot *s = &pf->slots[found];
    while (s->state == SLOT_FILLING) wait_change(pf);
    s->state = SLOT_READING;
    unlock(pf);
    const int count = s->count;
    memcpy(out_nchw, s->images, sizeof(float) * (size_t)count * (size_t)pf->ld->sample_floats);
    memcpy(labels, s->labels, sizeof(int32_t) * (size_t)count);
    lock(pf);
    s->state = SLOT_EMPTY;
    announce(pf);
    unlock(pf);
    return count;
}

void feed_prefetch_stop(feed_prefetch *pf) {
    lock(pf);
    pf->stop = true;
    announce(pf);
    unlock(pf);
    for (int t = 0; t < pf->num_threads; t++) pthread_join(pf->threads[t], NULL);
    for (int i = 0; i < pf->depth; i++) {
        free(pf->slots[i].images);
        free(pf->slots[i].labels);
    }
    pthread_cond_destroy(&pf->changed);
    pthread_mutex_destroy(&pf->mutex);
    free(pf->threads);
    free(pf->slots);
    free(pf);
}
