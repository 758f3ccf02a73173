/* term_kd.c - Hinton's knowledge distillation (docs/methods.md, "KD"): the student's logits
 * against the mean of the teachers' softened probabilities,
 *   alpha * T^2 * KL(p_T || softmax(s / T)),  p_T = 1/N sum_n softmax(t_n / T)   ([kd] T, alpha)
 * added to dlogits. With distill.ce_weight = auto the cross-entropy is weighted 1 - alpha. */
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill_term.h"
#include "feed/loss_kd.h"

typedef struct {
    int n, batch, classes;
    double T;
    float alpha;
    const float **logits; /* [n] this step's teacher logits */
    float *p;             /* (B, K) soft targets */
    feed_term_losses losses; /* "kd_loss": one value for the ensemble of teachers */
} kd_term;

static void *kd_create(const feed_term_setup *s) {
    kd_term *t = feed_xcalloc(1, sizeof *t, "KD term");
    t->n = s->n_teachers, t->batch = s->batch, t->classes = s->classes;
    t->T = s->cfg->kd.T;
    t->alpha = (float)s->cfg->kd.alpha;
    for (int k = 0; k < t->n; k++)
        if (s->teachers[k].classes != t->classes)
            FEED_INPUT_ERROR("KD needs teachers with the student's classes",
                             "kd: teacher %d (%s) has %d classes, the student %d", k + 1,
                             s->cfg->distill.teachers.v[k], s->teachers[k].classes, t->classes);
    t->logits = feed_xcalloc((size_t)t->n, sizeof *t->logits, "KD teacher logits");
    t->p = feed_xaligned(sizeof(float) * (size_t)t->batch * t->classes, "KD soft targets");
    feed_term_losses_init(&t->losses, 1, "kd_loss", false);
    return t;
}

static void kd_step(void *self, const feed_term_batch *b) {
    kd_term *t = self;
    for (int k = 0; k < t->n; k++) t->logits[k] = b->teachers[k].logits; /* (B, K) each */
    feed_kd_soft_targets(t->logits, t->n, t->batch, t->classes, t->T, t->p);
    t->losses.last[0] = feed_kd_loss(b->logits, t->p, t->batch, t->classes, t->T, t->alpha, b->dlogits);
}

static feed_term_losses *kd_losses(void *self) { return &((kd_term *)self)->losses; }

static void kd_describe(void *self, int k, char *buf, size_t cap) {
    kd_term *t = self;
    (void)k;
    snprintf(buf, cap, "logits (%d classes) at T = %g, weight alpha = %g", t->classes, t->T, (double)t->alpha);
}

static void kd_destroy(void *self) {
    kd_term *t = self;
    feed_term_losses_free(&t->losses);
    free(t->logits), free(t->p), free(t);
}

const feed_term_ops feed_term_kd = {"kd", FEED_OUT_LOGITS, kd_create, kd_step, NULL, NULL, kd_losses, kd_describe,
                                    NULL, kd_destroy};
