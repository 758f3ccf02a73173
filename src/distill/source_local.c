/* source_local.c - teachers in the student's process (teacher_source.h, distill.source =
 * local): one rank runs everything, on small machines, and the MPI pipeline is tested against
 * it bit for bit. The teachers read the minibatch of a step from their own copy of the loader
 * (the student's configuration and seed) when the student first asks for that step. */
#include <stdlib.h>

#include "feed/check.h"
#include "feed/teacher.h"
#include "feed/teacher_source.h"
#include "feed/train.h"

typedef struct {
    feed_teacher_source base;
    feed_dataset *ds;
    feed_loader *ld;
    feed_teacher **teacher; /* [N] */
    float **payload;        /* [N] */
    float *x;               /* (B, C, H, W) */
    int32_t *y;
    int64_t *idx;
    int64_t step;           /* step whose payloads are computed, -1 none */
} local_source;

static void local_start(feed_teacher_source *s, int64_t epoch, int64_t step_in_epoch, int64_t global_step) {
    (void)s, (void)epoch, (void)step_in_epoch, (void)global_step;
}

static const float *local_get(feed_teacher_source *s, int k, int64_t step, uint64_t batch_id, double *waited_s) {
    local_source *p = (local_source *)s;
    if (step != p->step) {
        int64_t steps = feed_loader_steps_per_epoch(p->ld);
        int got = feed_loader_batch(p->ld, step / steps, step % steps, p->x, p->y);
        feed_loader_batch_indices(p->ld, step / steps, step % steps, p->idx);
        FEED_CHECK(feed_batch_id(p->idx, got) == batch_id, "this is a bug",
                   "local teachers computed another minibatch than the student at step %lld", (long long)step);
        for (int n = 0; n < s->n_teachers; n++) feed_teacher_compute(p->teacher[n], p->x, p->payload[n]);
        p->step = step;
    }
    if (waited_s) *waited_s = 0;
    return p->payload[k];
}

static void local_release(feed_teacher_source *s, int64_t step) { (void)s, (void)step; }
static void local_finish(feed_teacher_source *s) { (void)s; }

static void local_destroy(feed_teacher_source *s) {
    local_source *p = (local_source *)s;
    for (int n = 0; n < s->n_teachers; n++) feed_teacher_free(p->teacher[n]), free(p->payload[n]);
    free(p->teacher), free(p->payload), free(s->layouts);
    free(p->x), free(p->y), free(p->idx);
    feed_loader_destroy(p->ld);
    feed_dataset_close(p->ds);
    free(p);
}

static const feed_teacher_source_ops local_ops = {local_start, local_get, local_release, local_finish, local_destroy};

feed_teacher_source *feed_source_local_from(const feed_config *cfg, feed_teacher **teachers, int n, uint64_t seed,
                                            int batch, int replica, int replicas) {
    local_source *p = feed_xcalloc(1, sizeof *p, "local teacher source");
    p->base = (feed_teacher_source){.ops = &local_ops, .n_teachers = n};
    p->base.layouts = feed_xcalloc((size_t)n, sizeof *p->base.layouts, "teacher layouts");
    p->ds = feed_dataset_open(cfg->data.path);
    feed_loader_config lc = feed_train_loader_config(cfg, batch, seed);
    lc.prefetch_depth = 0;
    lc.shard_rank = replica, lc.shard_count = replicas;
    p->ld = feed_loader_create(p->ds, &lc);
    p->x = feed_xaligned(sizeof(float) * (size_t)batch * p->ds->channels * p->ds->height * p->ds->width, "input batch");
    p->y = feed_xmalloc(sizeof(int32_t) * (size_t)batch, "labels");
    p->idx = feed_xmalloc(sizeof(int64_t) * (size_t)batch, "indices");
    p->teacher = feed_xcalloc((size_t)n, sizeof *p->teacher, "teachers");
    p->payload = feed_xcalloc((size_t)n, sizeof *p->payload, "teacher payloads");
    for (int k = 0; k < n; k++) {
        p->teacher[k] = teachers[k];
        p->base.layouts[k] = *feed_teacher_get_layout(teachers[k]);
        p->payload[k] = feed_xaligned(feed_teacher_payload_elems(&p->base.layouts[k]) * sizeof(float), "teacher payload");
    }
    p->step = -1;
    return &p->base;
}

feed_teacher_source *feed_source_local_create(const feed_config *cfg, int outputs, int batch) {
    int n = cfg->distill.teachers.n;
    feed_dataset *ds = feed_dataset_open(cfg->data.path);
    feed_teacher **teachers = feed_xcalloc((size_t)n, sizeof *teachers, "teachers");
    for (int k = 0; k < n; k++) teachers[k] = feed_teacher_open(cfg, k, ds, outputs, batch);
    feed_teacher_source *s = feed_source_local_from(cfg, teachers, n, (uint64_t)cfg->run.seed, batch, 0, 1);
    free(teachers);
    feed_dataset_close(ds);
    return s;
}
