/* train.h - training one network on one rank: the loop behind `scratch` (and the student
 * side of the distillation modes), its checkpoints and its evaluation.
 *
 * Exact resume: everything a step depends on is either in the checkpoint (parameters, BN
 * buffers, momentum, optimizer step count, epoch and step) or a pure function of
 * (seed, epoch, step) (data order, augmentation, dropout masks, learning rate). So a run
 * resumed from a checkpoint takes bit for bit the same steps as one that never stopped
 * (same rank layout and thread count).
 */
#ifndef FEED_TRAIN_H
#define FEED_TRAIN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "feed/checkpoint.h"
#include "feed/config.h"
#include "feed/dataset.h"
#include "feed/loader.h"
#include "feed/models.h"
#include "feed/net.h"

/* ---- building a model from the config (model_factory.c) ---- */

/* The model [model] describes, for images shaped like ds, planned for `batch`. */
feed_model_spec feed_model_spec_from_config(const feed_config *cfg, const feed_dataset *ds, int batch);
/* The network of a spec, parameters initialised from `seed`. */
feed_net *feed_model_create(const feed_model_spec *spec, uint64_t seed, bool inference_only);
/* The spec a checkpoint was trained with (root attributes arch, model_dropout, input_height,
 * input_width, in_channels, num_classes), planned for `batch`. A file without input_height /
 * input_width (one converted from PyTorch) takes height x width, the data set's; 0 makes
 * them required. */
feed_model_spec feed_model_spec_from_checkpoint(const feed_ckpt *ck, int batch, int height, int width);
/* Write model_dropout, input_height and input_width (arch is part of feed_ckpt_meta). */
void feed_model_put_attrs(feed_ckpt_writer *w, const feed_model_spec *spec);
/* The inference network (eval mode, BN folded) of checkpoint `path`, planned for `batch`,
 * after checking that it fits data set ds (read from data_path): classes, channels and image
 * size, each refused with exit 2 naming the file and its `role` ("teacher", "model"). The
 * checkpoint's arch goes to arch[arch_cap] unless arch is NULL. */
feed_net *feed_model_load(const char *path, const char *role, const feed_dataset *ds, const char *data_path,
                          int batch, char *arch, size_t arch_cap);

/* ---- parameters <-> checkpoint (net_checkpoint.c) ---- */

/* /<group>/<key> for every parameter and buffer, plain PyTorch layout. */
void feed_net_save(feed_ckpt_writer *w, feed_net *net, const char *group);
/* Read them back; a missing tensor or wrong shape ends the job naming the key. */
void feed_net_load(const feed_ckpt *ck, feed_net *net, const char *group);
/* Momentum buffers (flat arrays in the engine's layout, as feed_net_params) under
 * /<group>/<key> in plain PyTorch layout. */
void feed_net_save_flat(feed_ckpt_writer *w, feed_net *net, const float *flat, const char *group);
void feed_net_load_flat(const feed_ckpt *ck, feed_net *net, float *flat, const char *group);

/* ---- a network's weights as one byte string (net_snapshot.c) ----
 * Every parameter and buffer in entry order, plain PyTorch layout, raw bytes (float32, and
 * int64 for num_batches_tracked): what sfeed sends from one generation to the next. Setting a
 * snapshot gives the same bits as loading the /model of a checkpoint written from the same
 * network. */
size_t feed_net_snapshot_bytes(const feed_net *net);
void feed_net_snapshot_get(const feed_net *net, void *buf);
void feed_net_snapshot_set(feed_net *net, const void *buf);
/* The snapshot of a checkpoint's /<group> for a network of net's architecture. */
void feed_net_snapshot_read(const feed_ckpt *ck, const feed_net *net, const char *group, void *buf);

/* ---- evaluation (evaluate.c) ---- */

typedef struct {
    int64_t samples;
    int64_t errors;
    double loss;    /* mean cross-entropy */
    double error;   /* errors / samples */
} feed_eval_result;

/* Evaluate net (eval mode) on every batch of loader ld. If probs is not NULL it receives the
 * softmax outputs (samples x classes, in loader order) for ensembles. The net's planned batch
 * must equal the loader's; a smaller last batch is padded (BN uses running statistics, so
 * samples do not influence each other). */
feed_eval_result feed_evaluate(feed_net *net, feed_loader *ld, int classes, float *probs);

/* ---- the training loop (trainer.c) ---- */

/* The training loader [data] and [train] describe, for `seed` (teachers of a distillation
 * job use the student's, so they see exactly its minibatches). */
feed_loader_config feed_train_loader_config(const feed_config *cfg, int batch, uint64_t seed);

#include "feed/sgd.h"

/* Register every trainable parameter of net with the optimizer; returns its momentum buffers
 * (zeroed, the net's flat parameter layout; the caller frees them after the optimizer). */
float *feed_sgd_add_net(feed_sgd *sgd, feed_net *net);

/* What distillation adds to plain cross-entropy training (the student side of a distill
 * job: src/distill/student.c). Every callback may be NULL.
 *   L = ce_weight * CE + (the extension's terms)
 */
typedef struct feed_train_extension {
    void *self;
    double ce_weight; /* the cross-entropy's weight (1 for plain training) */
    /* The student is built: build extra modules for its batch and register their
       parameters with the optimizer. */
    void (*setup)(void *self, feed_net *student, feed_sgd *sgd);
    /* Extra state in the student's checkpoints (e.g. /ntl/<n>, /optim/ntl/<n>). */
    void (*save)(void *self, feed_ckpt_writer *w);
    void (*restore)(void *self, const feed_ckpt *ck);
    /* Training starts (fresh or resumed) at this global step. */
    void (*start)(void *self, int64_t epoch, int64_t step_in_epoch, int64_t global_step);
    /* Before the first step of `epoch` (0-based; also when resuming inside it): may wait for
       what the epoch needs. Returns false when a stop signal came meanwhile: the run then
       checkpoints where it is and ends as if stopped. */
    bool (*epoch_begin)(void *self, int64_t epoch);
    /* After the student's training forward of `global_step` on the samples idx[0..n-1]:
       add the extension's gradients to dlogits (B, K; it holds ce_weight * dCE/dlogits) and to
       the student's taps (feed_net_tap_add_grad). Its losses are its own metrics
       (train_loss stays the cross-entropy). */
    void (*add_loss)(void *self, feed_net *student, int64_t global_step, const int64_t *idx, int n,
                     const float *logits, float *dlogits);
    /* After the backward of `global_step`: whether the extension's own numbers of this step
       (its losses, its modules' gradients and BN statistics) hold an Inf or NaN; if so a
       description naming the term, the teacher and the value goes to what[cap]. */
    bool (*step_nonfinite)(void *self, char *what, size_t cap);
    /* The step `global_step` has ended: kept (its optimizer step was taken) or dropped
       (train.on_nonfinite = skip_step: the extension forgets the step's losses and restores
       its modules' BN statistics). Cheap: e.g. driving MPI progress. */
    void (*step_end)(void *self, int64_t global_step, bool kept);
    /* Optional: the extension's trainable networks (term modules), at most max into out;
       returns the count. Data-parallel replicas reduce their gradients with the student's. */
    int (*modules)(void *self, feed_net **out, int max);
    /* Optional: a few words for the progress line inside an epoch (e.g. " wait 0.1 0.0 s",
       each teacher's wait so far in the epoch), written to buf[cap]. */
    void (*progress)(void *self, char *buf, size_t cap);
    /* Extra figures of the epoch just finished (names live as long as self); returns the
       count and resets the accumulators. */
    int (*epoch_metrics)(void *self, const char **names, double *values, int max);
    /* Epoch `epoch` (completed epochs) has ended and its checkpoint, if due, is written. */
    void (*epoch_end)(void *self, feed_net *student, int64_t epoch);
    /* Training ends (finished, or stopped by a signal): release peers. */
    void (*finish)(void *self);
} feed_train_extension;

typedef struct {
    const feed_config *cfg;
    MPI_Comm comm;        /* the ranks training side by side (they agree on stops, resume
                             points and print one line per epoch together) */
    int rank, size;       /* this rank in comm, and comm's size */
    uint64_t seed;        /* this rank's seed */
    const char *prefix;   /* checkpoint/metrics file prefix in run.dir, e.g. "teacher0" */
    const char *final_path; /* where the finished model goes (e.g. run.dir/teacher_0.h5) */
    const char *label;    /* prefix of the job's printed lines (e.g. "gen 2"), or NULL */
    const feed_train_extension *ext; /* NULL: cross-entropy only */
    /* Data-parallel replicas of this network (replicas.h); left 0 (or MPI_COMM_NULL, or a
       communicator of one rank) when it trains alone. With P > 1 replicas train.batch is then the global batch, each replica takes its shard. Replica 0
       evaluates and writes checkpoints and metrics; stops and resume points are agreed over
       comm, which holds every replica. */
    MPI_Comm replicas;
    bool sync_bn;         /* with replicas: BN statistics over the global batch */
} feed_train_job;

/* Trains (or resumes) to cfg->train.epochs. Returns 0 when finished or stopped by a signal
 * after checkpointing (every rank of job->comm returns the same). Collective over job->comm. */
int feed_train_run(const feed_train_job *job);

#endif
