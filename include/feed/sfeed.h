/* sfeed.h - run.mode = sfeed: generations of students, each the next one's teacher
 * (sequential FEED; born-again networks with sfeed.terms = kd), one generation per rank.
 *
 *   generation 0   sfeed.teacher (a checkpoint), or trained with cross-entropy in the job
 *   generation g   a fresh network ([model], seed run.seed + g) trained with cross-entropy
 *                  plus sfeed.terms against generation g-1: the distill student's path
 *                  (distill.h) with one in-process teacher whose weights come from the rank
 *                  of generation g-1 (weights_channel.h)
 *
 * Schedule (fixed, so results never depend on timing): generation g's epoch e (0-based)
 * learns from generation g-1's weights after its epoch
 *   version(e) = E                      strict (sfeed.lag_epochs = 0): g starts when g-1 ended
 *   version(e) = min(L + e, E)          pipelined (lag L): g starts after L epochs of g-1
 * so the last generation ends after about E + (K-1) L epochs instead of K E.
 *
 * Outputs in run.dir: gen<g>_e*_s*.h5 checkpoints, gen<g>_metrics.jsonl (with teacher_gen and
 * teacher_epoch, the version learned from), gen<g>.h5 when generation g is finished, and
 * gen<g>_w<j>.h5, generation g's weights after epoch j while generation g+1 may need them.
 */
#ifndef FEED_SFEED_H
#define FEED_SFEED_H

#include "feed/app.h"
#include "feed/dataset.h"
#include "feed/models.h"

/* The version of generation g-1 that generation g's epoch e learns from. */
int feed_sfeed_version(int64_t epoch, int lag_epochs, int epochs);

/* The ranks (entry in mode_list.h). */
int feed_sfeed_rank(const feed_run_ctx *ctx);

/* `feed_mpi --check` of an sfeed job: generation 0 (checked against the data set), the terms
 * against it and against a generation of [model], the schedule; exit 2 on a problem. */
void feed_sfeed_check_job(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *model);

#endif
