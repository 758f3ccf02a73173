/* teacher.h - a frozen teacher of a distillation job: its network (inference-only, BN folded
 * into the convolutions), checked against the data set, plus what its outputs need (FT's
 * paraphraser encoder), computing one minibatch's payload (teacher_outputs.h). The same code
 * runs on a teacher rank and inside the student's process, so both give the same bits.
 *
 *   feed_teacher *t = feed_teacher_open(cfg, n, ds, outputs, B);
 *   feed_teacher_compute(t, x, payload);    x (B, C, H, W) -> feed_teacher_payload_elems() floats
 *   feed_teacher_free(t);
 */
#ifndef FEED_TEACHER_H
#define FEED_TEACHER_H

#include <stdint.h>

#include "feed/config.h"
#include "feed/dataset.h"
#include "feed/net.h"
#include "feed/teacher_outputs.h"

typedef struct feed_teacher feed_teacher;

/* The network of checkpoint `path` for batches of `batch` images of ds (data_path names ds in
 * messages): inference-only; a checkpoint that does not fit the data set (classes, channels,
 * image size) ends the job (exit 2). */
feed_net *feed_teacher_load_net(const char *path, const feed_dataset *ds, const char *data_path, int batch);

/* The layout of a teacher network's outputs (its "final", "layer<s>" taps and logits);
 * factor_c is FT's factor width (0 without FEED_OUT_FACTOR). */
feed_teacher_layout feed_teacher_layout_of(feed_net *net, int outputs, int factor_c);
/* Teacher n (0-based) of distill.teachers: the layout of its `outputs` on batches of `batch`,
 * from its checkpoint alone (FT's factor width from ft.rate; no paraphraser built): what
 * --check reports and what a feature cache is matched against. */
feed_teacher_layout feed_teacher_layout_from_file(const feed_config *cfg, int n, const feed_dataset *ds, int outputs,
                                                  int batch);

/* Teacher n (0-based) of distill.teachers computing `outputs` (FEED_OUT_* mask); FT's
 * paraphraser is loaded or trained here (paraphraser.h). */
feed_teacher *feed_teacher_open(const feed_config *cfg, int n, const feed_dataset *ds, int outputs, int batch);
/* A teacher around a network the caller built (inference-only, the model tail's taps); it
 * takes the network over. FEED_OUT_FACTOR is not available this way. */
feed_teacher *feed_teacher_wrap(feed_net *net, int outputs);
const feed_teacher_layout *feed_teacher_get_layout(const feed_teacher *t);
/* The teacher's network (e.g. to set new weights between epochs). */
feed_net *feed_teacher_net(feed_teacher *t);
/* Forward the minibatch x (B, C, H, W) and write its payload. */
void feed_teacher_compute(feed_teacher *t, const float *x, float *payload);
/* 1 if the payload can go to a bf16 wire without an fp32 pass: a bf16 network whose payload
 * is its final map alone (FEED, L1; not attention maps, logits or FT factors, computed in
 * fp32). Then feed_teacher_compute_bf16 forwards x and writes the payload as bf16. */
int feed_teacher_direct_bf16(const feed_teacher *t);
void feed_teacher_compute_bf16(feed_teacher *t, const float *x, uint16_t *payload);
void feed_teacher_free(feed_teacher *t);

/* 64-bit FNV-1a hash of a minibatch's sample indices: the student and every teacher derive it,
 * so a teacher computing another minibatch is caught at once. */
uint64_t feed_batch_id(const int64_t *idx, int n);

#endif
