/* distill_term.h - a distillation term: what one method adds to the student's cross-entropy
 * (docs/methods.md states each formula). A job has a list of terms (distill.terms), each
 * weighted by its own section's key; the student loop (src/distill/student.c) runs them all.
 *
 * A term owns its modules and their parameters (registered with the student's optimizer, so
 * they follow the same schedule), its checkpoint state and its metrics. Each step it sees the
 * student's logits and taps after the training forward and every teacher's payload for the
 * same minibatch, and adds its gradients:
 *   into dlogits (B, K)                          (KD)
 *   into the student's taps (feed_student_taps)  (FEED, L1, FT: "final"; AT: "layer<s>")
 * The student's backward then carries them through the network. Terms see the student only
 * through its logits and taps, so tests and benchmarks can hand them arrays.
 *
 * Implementations: src/distill/term_map.c (feed, l1, ft: a module on the student's final map
 * matched with FEED's normalised L1 loss), term_kd.c, term_at.c; the table in terms.c.
 */
#ifndef FEED_DISTILL_TERM_H
#define FEED_DISTILL_TERM_H

#include "feed/checkpoint.h"
#include "feed/config.h"
#include "feed/net.h"
#include "feed/sgd.h"
#include "feed/teacher_outputs.h"

/* The student's taps (models.h names: "final", "layer1".."layer<S>") as terms use them. */
typedef struct feed_student_taps {
    void *ctx;
    /* Plain (B, C, H, W) value of the tap after the training forward, its dims into dims (may
     * be NULL); NULL when the student has no such tap. */
    const float *(*get)(void *ctx, const char *name, int dims[4]);
    /* Add g (the tap's shape) to the gradient the next backward takes at the tap. */
    void (*add_grad)(void *ctx, const char *name, const float *g);
} feed_student_taps;

/* The taps of a student network: feed_net_tap and feed_net_tap_add_grad. */
feed_student_taps feed_student_taps_of(feed_net *student);

/* Per-teacher losses of a term: step() puts this step's values in last[k] (after
 * feed_term_losses_begin zeroes them); the student commits them into the epoch's sums when
 * the step is kept, and drops them when the trainer skips it (train.on_nonfinite). Reported
 * as the metrics "<prefix>_1" .. "<prefix>_N" (just "<prefix>" when per_teacher is false):
 * the mean over the epoch's kept steps. */
typedef struct {
    int n;
    double *sum;       /* [n] over the epoch's kept steps */
    double *last;      /* [n] this step */
    int64_t steps;
    char (*names)[32]; /* [n] */
} feed_term_losses;
void feed_term_losses_init(feed_term_losses *l, int n, const char *prefix, bool per_teacher);
void feed_term_losses_begin(feed_term_losses *l);
void feed_term_losses_commit(feed_term_losses *l);
int feed_term_losses_report(feed_term_losses *l, const char **names, double *values, int max);
void feed_term_losses_free(feed_term_losses *l);

typedef struct {
    const feed_config *cfg;
    const feed_student_taps *taps;       /* shapes are read at create */
    int batch, classes;                  /* B, K of the student's logits */
    uint64_t seed;                       /* the student's seed: modules' seeds derive from it */
    feed_sgd *sgd;                       /* the student's optimizer: register parameters here */
    int n_teachers;
    const feed_teacher_layout *teachers; /* [n_teachers] */
} feed_term_setup;

typedef struct {
    const feed_student_taps *taps;     /* after the training forward of this step */
    const float *logits;               /* (B, K) */
    float *dlogits;                    /* (B, K), add to it */
    const feed_teacher_view *teachers; /* [n_teachers] payloads of this minibatch */
} feed_term_batch;

typedef struct feed_term_ops {
    const char *name;   /* distill.terms value and config section */
    int outputs;        /* teacher outputs it reads (FEED_OUT_* mask) */
    /* Check shapes against the teachers (a mismatch ends the job with exit 2 and a hint),
     * build modules, register them with s->sgd. Returns the term's state. */
    void *(*create)(const feed_term_setup *s);
    void (*step)(void *self, const feed_term_batch *b);
    void (*save)(void *self, feed_ckpt_writer *w);   /* may be NULL: no state */
    void (*restore)(void *self, const feed_ckpt *ck);
    /* The term's per-teacher losses: this step's and the epoch's (see feed_term_losses). */
    feed_term_losses *(*losses)(void *self);
    /* One line per teacher for --check (what the term builds), into buf. */
    void (*describe)(void *self, int teacher, char *buf, size_t cap);
    /* The trainable module the term keeps for teacher k (0-based), or NULL (none, or a term
     * without modules: may itself be NULL). For tests and tools. */
    feed_net *(*module)(void *self, int teacher);
    void (*destroy)(void *self);
} feed_term_ops;

/* Indexed by enum feed_term_id. */
extern const feed_term_ops *const feed_term_table[FEED_NUM_TERMS];
extern const feed_term_ops feed_term_feed, feed_term_kd, feed_term_at, feed_term_l1, feed_term_ft;

/* The teacher outputs the job's terms (feed_cfg_terms) need together. */
int feed_terms_outputs(const feed_config *cfg);


/* The factor a term's per-teacher loss enters the total with: beta, or beta / N. */
float feed_term_scale(double beta, int beta_reduce, int n_teachers);

#endif
