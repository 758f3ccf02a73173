/* teacher_source.h - where a distillation job's teacher outputs come from: the student's side
 * of the seam between teachers and terms (terms read payloads and never know the source).
 *
 *   feed_teacher_source *src = feed_source_mpi_create(cfg, outputs, B);   (or _local_)
 *   src->layouts[k]                              teacher k's outputs (0-based k)
 *   feed_source_start(src, epoch, step_in_epoch, global_step)      once, after resume
 *   per step:  payload_k = feed_source_get(src, k, step, batch_id, &waited_s)   for each k
 *              ... the terms read them ...
 *              feed_source_release(src, step)                       payloads invalid after
 *   feed_source_finish(src)      end of training or a stop signal: teacher ranks are released
 *   feed_source_destroy(src)
 *
 * Implementations (distill.source):
 *   mpi    teacher ranks 1..N compute the student's minibatches themselves and stream their
 *          payloads over the feature transport (feature_transport.h); creating it is
 *          collective with those ranks (src/distill/teacher_rank.c);
 *   local  the teachers run in this process on their own copy of the loader, computed when
 *          the student asks for a step; no waiting, the same bits as mpi. sfeed generations
 *          use it with the generation before as the teacher, its weights swapped between
 *          epochs (generation.c).
 *   cache  the teachers' outputs read from feature caches written before (run.mode = cache,
 *          source_cache.c): epoch e's minibatch rows of view e mod V, read a step ahead.
 * The payload of step t may only be asked for at step t; batch_id (feed_batch_id of the
 * student's sample indices) is checked against the teacher's, so a teacher on another
 * minibatch fails loudly. waited_s receives how long the call blocked (teacher-bound time).
 */
#ifndef FEED_TEACHER_SOURCE_H
#define FEED_TEACHER_SOURCE_H

#include <mpi.h>
#include <stdint.h>

#include "feed/config.h"
#include "feed/teacher_outputs.h"

typedef struct feed_teacher_source feed_teacher_source;

typedef struct {
    void (*start)(feed_teacher_source *s, int64_t epoch, int64_t step_in_epoch, int64_t global_step);
    const float *(*get)(feed_teacher_source *s, int k, int64_t step, uint64_t batch_id, double *waited_s);
    void (*release)(feed_teacher_source *s, int64_t step);
    void (*finish)(feed_teacher_source *s);
    void (*destroy)(feed_teacher_source *s);
} feed_teacher_source_ops;

/* Implementations embed this first. */
struct feed_teacher_source {
    const feed_teacher_source_ops *ops;
    int n_teachers;
    feed_teacher_layout *layouts; /* [n_teachers], owned by the implementation */
};

/* The teachers of distill.teachers computing `outputs` on batches of `batch`. With
 * distill.student_ranks = P > 1 the student is replica r of P on world rank r, `batch` its
 * shard B / P of every minibatch (loader shard r of P); the teacher ranks P..P+N-1 compute the
 * whole minibatch and send each replica its rows; a cache source reads the shard's rows. */
feed_teacher_source *feed_source_mpi_create(const feed_config *cfg, int outputs, int batch, int replica, int replicas);
feed_teacher_source *feed_source_local_create(const feed_config *cfg, int outputs, int batch);
/* The feature caches of distill.teachers in cache.dir (feature_cache.h), checked against this
 * job before the first step; rows read ahead on a background thread. */
feed_teacher_source *feed_source_cache_create(const feed_config *cfg, int outputs, int batch, int replica,
                                              int replicas);
/* In-process teachers given as objects (teacher.h; the source takes them over), on the
 * minibatches of the loader [data] describes with `seed` (the student's): for student replica
 * r of P (sfeed with distill.student_ranks) shard r of P of them. */
struct feed_teacher;
feed_teacher_source *feed_source_local_from(const feed_config *cfg, struct feed_teacher **teachers, int n,
                                            uint64_t seed, int batch, int replica, int replicas);

static inline void feed_source_start(feed_teacher_source *s, int64_t epoch, int64_t step_in_epoch, int64_t step) {
    s->ops->start(s, epoch, step_in_epoch, step);
}
static inline const float *feed_source_get(feed_teacher_source *s, int k, int64_t step, uint64_t batch_id,
                                           double *waited_s) {
    return s->ops->get(s, k, step, batch_id, waited_s);
}
static inline void feed_source_release(feed_teacher_source *s, int64_t step) { s->ops->release(s, step); }
static inline void feed_source_finish(feed_teacher_source *s) { s->ops->finish(s); }
static inline void feed_source_destroy(feed_teacher_source *s) {
    if (s) s->ops->destroy(s);
}

/* The communicators between the student's replicas and the teacher ranks (distill.source = mpi,
 * distill.student_ranks = P): links[r] holds world rank r (student replica r, rank 0 in it) and
 * the teacher ranks P..P+N-1 (ranks 1..N in it); a rank outside links[r] gets MPI_COMM_NULL
 * there. With P = 1 links[0] is MPI_COMM_WORLD. Collective over MPI_COMM_WORLD: the student's
 * replicas (source_mpi.c) and the teacher ranks (teacher_rank.c) call it at the same point. */
void feed_replica_links(int P, MPI_Comm *links);
void feed_replica_links_free(int P, MPI_Comm *links);

#endif
