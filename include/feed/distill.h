/* distill.h - run.mode = distill (and pfeed, its short form with distill.terms = feed): a
 * student trained with cross-entropy plus distillation terms from frozen teachers.
 *
 *   rank 0     the student (student.c): the training loop (train.h) with an extension that
 *              asks the teacher source for the teachers' payloads of each minibatch and runs
 *              the terms (distill_term.h) on them
 *   rank n>=1  teacher n with distill.source = mpi (teacher_rank.c): computes the student's
 *              minibatches itself and streams the payloads the terms need
 * With distill.student_ranks = P the student is P data-parallel replicas on ranks 0..P-1
 * (replicas.h), each on its shard B / P of every minibatch, and teacher n is rank P-1+n: it
 * computes the whole minibatch and sends every replica its rows.
 *
 * One step, all ranks deriving the same minibatch from (seed, epoch, step):
 *   teacher n:  loader batch -> forward (eval) -> payload (final map | attention | logits |
 *               FT factor) -> send(step)                              (runs ahead, credits)
 *   student:    loader batch -> forward (train) -> CE * ce_weight -> dlogits
 *               payloads of every teacher (wait) -> each term: loss, gradients into dlogits
 *               and taps -> backward (student + term modules) -> SGD -> metrics
 * docs/walkthrough.md follows one pFEED step through the code.
 */
#ifndef FEED_DISTILL_H
#define FEED_DISTILL_H

#include "feed/app.h"
#include "feed/dataset.h"
#include "feed/models.h"
#include "feed/teacher_source.h"
#include "feed/train.h"

/* The distillation part of a student's training: what it learns from and how. */
typedef struct {
    const feed_config *cfg;
    const feed_int_list *terms; /* enum feed_term_id: distill.terms, or sfeed.terms */
    int n_teachers;
    uint64_t seed;              /* the student's seed (its term modules' seeds derive from it) */
    /* Builds the teacher source when the student exists (for mpi: collective with the teacher
     * ranks), for teachers computing `outputs` on batches of `batch`. */
    feed_teacher_source *(*make_source)(void *ctx, int outputs, int batch);
    void *source_ctx;
} feed_distill_spec;

typedef struct feed_distill_student feed_distill_student;
feed_distill_student *feed_distill_student_create(const feed_distill_spec *spec);
/* Its hooks into the training loop (train.h); valid as long as the object. */
feed_train_extension feed_distill_student_extension(feed_distill_student *d);
/* The source it made (NULL before the training loop's setup). */
feed_teacher_source *feed_distill_student_source(feed_distill_student *d);
void feed_distill_student_free(feed_distill_student *d);

/* The ranks of run.mode = distill / pfeed: the student (one of its data-parallel replicas,
 * the ranks of `replicas`; distill.student_ranks) and the teachers. */
int feed_distill_student_rank(const feed_run_ctx *ctx, MPI_Comm replicas);
int feed_distill_teacher_rank(const feed_run_ctx *ctx);

/* `feed_mpi --check` of a distill job after the data set and student model were checked:
 * opens every teacher, checks it against the data set and the student for every term (the
 * same checks the run makes), says what each term builds and whether FT's paraphrasers will
 * be reused or trained, without training. Problems end the process with exit code 2. */
void feed_distill_check(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *student);

/* run.mode = cache (src/distill/cache_job.c): this rank writes the feature caches
 * (feature_cache.h) of teachers k = rank, rank + P, ... of distill.teachers: each over
 * cache.views augmented views of the selected training samples, the teacher forward on this
 * thread and the HDF5 writes on a writer thread; resumes an interrupted cache, skips a
 * complete one that matches. Returns the exit code. */
int feed_cache_rank(const feed_run_ctx *ctx);
/* --check of run.mode = cache: per teacher its cache file, what it will hold, its size and
 * whether it exists, is complete or will be resumed, before anything is written. */
void feed_cache_check(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *student);

#endif
