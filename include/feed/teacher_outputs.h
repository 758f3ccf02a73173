/* teacher_outputs.h - what a frozen teacher hands the student for one minibatch.
 *
 * The terms of a distillation job each need some outputs of a teacher (feed_term_ops.outputs);
 * a teacher computes only their union and packs it into one flat fp32 payload per step, which
 * the MPI transport sends as it is and the in-process source hands over:
 *
 *   [final  (B, C_t, H, W)]                    FEED_OUT_FINAL      pFEED, L1
 *   [Q_1 (B, H_1*W_1)] ... [Q_S (B, H_S*W_S)]  FEED_OUT_ATTENTION  AT: per residual stage,
 *                                              Q = normalize(mean_c(A^2)) per sample
 *   [logits (B, K)]                            FEED_OUT_LOGITS     KD
 *   [factor (B, kC_t, H, W)]                   FEED_OUT_FACTOR     FT: paraphraser encoder of
 *                                                                  the final map
 *
 * each block present only when asked for, in this order, plain row-major. A feed_teacher_layout
 * says which blocks there are and their shapes; it is a fixed array of ints, so teacher ranks
 * send theirs to the student with one MPI_Gather.
 */
#ifndef FEED_TEACHER_OUTPUTS_H
#define FEED_TEACHER_OUTPUTS_H

#include <stddef.h>

enum feed_teacher_output {
    FEED_OUT_FINAL = 1 << 0,
    FEED_OUT_ATTENTION = 1 << 1,
    FEED_OUT_LOGITS = 1 << 2,
    FEED_OUT_FACTOR = 1 << 3,
};

#define FEED_MAX_STAGES 4

/* Shapes of one teacher's outputs. The teacher's final map, stages and classes are always
 * filled (they describe the teacher); `outputs` says which blocks the payload holds. */
typedef struct feed_teacher_layout {
    int outputs;                                   /* FEED_OUT_* mask */
    int batch;                                     /* B */
    int final_c, final_h, final_w;                 /* final map C_t, H, W */
    int stages;                                    /* residual stages: 3 (CIFAR) or 4 */
    int stage_c[FEED_MAX_STAGES], stage_h[FEED_MAX_STAGES], stage_w[FEED_MAX_STAGES];
    int classes;                                   /* K */
    int factor_c;                                  /* FT: round(k * C_t), 0 without FT */
} feed_teacher_layout;

/* The layout as ints (for MPI): FEED_TEACHER_LAYOUT_INTS of them. */
#define FEED_TEACHER_LAYOUT_INTS ((int)(sizeof(feed_teacher_layout) / sizeof(int)))

/* Pointers into one payload (NULL for absent blocks). */
typedef struct {
    const float *final;                        /* (B, C_t, H, W) */
    const float *attention[FEED_MAX_STAGES];   /* (B, H_s*W_s) each, per-sample unit norm */
    const float *logits;                       /* (B, K) */
    const float *factor;                       /* (B, factor_c, H, W) */
} feed_teacher_view;

/* Floats in one step's payload. */
size_t feed_teacher_payload_elems(const feed_teacher_layout *l);
feed_teacher_view feed_teacher_view_of(const feed_teacher_layout *l, const float *payload);
/* The payload of shard r of P (loader shard r: samples r, r + P, ... of the minibatch) cut
 * from the whole minibatch's payload: dst holds feed_teacher_payload_elems of the layout with
 * batch B / P (B a multiple of P). */
void feed_teacher_payload_shard(const feed_teacher_layout *whole, const float *payload, int r, int P, float *dst);
/* "final 64x8x8 + attention 3 stages + logits 10" for --check and logs. */
const char *feed_teacher_outputs_str(const feed_teacher_layout *l, char *buf, size_t cap);

#endif
