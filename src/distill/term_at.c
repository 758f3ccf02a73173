/* term_at.c - attention transfer (docs/methods.md, "AT"): on every residual stage s the
 * student's attention map against each teacher's,
 *   sum_n scale * sum_s mean((Q^S_s - Q^T_{n,s})^2),   scale = beta/2 or beta/(2N)   ([at])
 * (one term per teacher: the paper's "Nx AT"). The teachers compute and send Q^T_{n,s}
 * (B, H_s*W_s) themselves, C times smaller than the stage outputs. Gradients go to the
 * student's "layer<s>" taps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/distill_term.h"
#include "feed/loss_at.h"

typedef struct {
    int n, stages;
    int dims[FEED_MAX_STAGES][4]; /* student stage outputs (B, C, H, W) */
    char tap[FEED_MAX_STAGES][16];
    float scale;
    float *dx;      /* (B, C, H, W) of the largest stage */
    float *q;       /* (B, H*W) of the largest stage */
    const float **qt;       /* [n] this stage's teacher maps */
    double *sample_loss;    /* (B, n) */
    double *loss;           /* [n] */
    feed_term_losses losses; /* "at_loss_<n>", summed over stages */
} at_term;

static void *at_create(const feed_term_setup *s) {
    at_term *t = feed_xcalloc(1, sizeof *t, "AT term");
    t->n = s->n_teachers;
    size_t max_map = 1, max_q = 1;
    for (int st = 0; st < FEED_MAX_STAGES; st++, t->stages++) {
        snprintf(t->tap[st], sizeof t->tap[st], "layer%d", st + 1);
        int *d = t->dims[st];
        if (!s->taps->get(s->taps->ctx, t->tap[st], d)) break;
        size_t map = (size_t)d[0] * d[1] * d[2] * d[3], q = (size_t)d[0] * d[2] * d[3];
        max_map = map > max_map ? map : max_map;
        max_q = q > max_q ? q : max_q;
    }
    for (int k = 0; k < t->n; k++) {
        const feed_teacher_layout *l = &s->teachers[k];
        int same = l->stages == t->stages;
        for (int st = 0; same && st < t->stages; st++)
            same = l->stage_h[st] == t->dims[st][2] && l->stage_w[st] == t->dims[st][3];
        if (!same)
            FEED_INPUT_ERROR("AT compares the attention maps stage by stage: use a teacher with as many residual "
                             "stages of the same sizes as the student (e.g. CIFAR ResNets, WRN and ResNeXt together)",
                             "at: teacher %d (%s) has %d stages (the first %dx%d), the student %d (the first %dx%d)",
                             k + 1, s->cfg->distill.teachers.v[k], l->stages, l->stage_h[0], l->stage_w[0], t->stages,
                             t->dims[0][2], t->dims[0][3]);
    }
    t->scale = feed_term_scale(s->cfg->at.beta / 2, s->cfg->at.beta_reduce, t->n);
    t->dx = feed_xaligned(max_map * sizeof(float), "dL/d(stage output)");
    t->q = feed_xaligned(max_q * sizeof(float), "attention scratch");
    t->qt = feed_xcalloc((size_t)t->n, sizeof *t->qt, "teacher attention maps");
    t->sample_loss = feed_xcalloc((size_t)t->dims[0][0] * t->n, sizeof *t->sample_loss, "AT sample losses");
    t->loss = feed_xcalloc((size_t)t->n, sizeof *t->loss, "AT losses");
    feed_term_losses_init(&t->losses, t->n, "at_loss", true);
    return t;
}

static void at_step(void *self, const feed_term_batch *b) {
    at_term *t = self;
    feed_term_losses_begin(&t->losses);
    for (int st = 0; st < t->stages; st++) {
        const int *d = t->dims[st];
        size_t hw = (size_t)d[2] * d[3];
        const float *x = b->taps->get(b->taps->ctx, t->tap[st], NULL); /* (B, C, H, W) */
        memset(t->dx, 0, (size_t)d[0] * d[1] * hw * sizeof(float));
        for (int k = 0; k < t->n; k++) t->qt[k] = b->teachers[k].attention[st]; /* (B, H*W) */
        feed_at_loss(x, t->qt, t->n, d[0], d[1], hw, t->scale, t->q, t->sample_loss, t->loss, t->dx);
        for (int k = 0; k < t->n; k++) t->losses.last[k] += t->loss[k];
        b->taps->add_grad(b->taps->ctx, t->tap[st], t->dx);
    }
}

static feed_term_losses *at_losses(void *self) { return &((at_term *)self)->losses; }

static void at_describe(void *self, int k, char *buf, size_t cap) {
    at_term *t = self;
    (void)k;
    size_t n = (size_t)snprintf(buf, cap, "attention maps of %d stages:", t->stages);
    for (int st = 0; st < t->stages && n < cap; st++)
        n += (size_t)snprintf(buf + n, cap - n, " %dx%d", t->dims[st][2], t->dims[st][3]);
}

static void at_destroy(void *self) {
    at_term *t = self;
    feed_term_losses_free(&t->losses);
    free(t->dx), free(t->q), free(t->qt), free(t->sample_loss), free(t->loss), free(t);
}

const feed_term_ops feed_term_at = {"at", FEED_OUT_ATTENTION, at_create, at_step, NULL, NULL, at_losses,
                                    at_describe, NULL, at_destroy};
