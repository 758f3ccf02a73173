/* distill.h - run.mode = distill (and pfeed, its short form with distill.terms = feed): a
 * student trained with cross-entropy plus distillation terms from frozen teachers.
 *
 *   rank 0     the student (student.c): the training loop (train.h) with an extension that
 *              asks the teacher source for the teachers' payloads of each minibatch and runs
 *              the terms (distill_term.h) on them
 *   rank n>=1  teacher n with distill.source = mpi (teacher_rank.c): computes the student's
 *              minibatches itself and streams the payloads the terms need
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

int feed_distill_student(const feed_run_ctx *ctx);
int feed_distill_teacher_rank(const feed_run_ctx *ctx);

/* `feed_mpi --check` of a distill job after the data set and student model were checked:
 * opens every teacher, checks it against the data set and the student for every term (the
 * same checks the run makes), says what each term builds and whether FT's paraphrasers will
 * be reused or trained, without training. Problems end the process with exit code 2. */
void feed_distill_check(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *student);

#endif
