/* term_map.c - the terms that map the student's final map x^S (B, C_s, H, W) through a module
 * per teacher and match the result with a teacher tensor by FEED's normalised L1 loss
 * (loss_feed.h; docs/methods.md):
 *
 *   feed  NTL_n(x^S)         vs  x^T_n, teacher n's final map     [feed] beta, beta_reduce, ntl_bn
 *   l1    x^S itself         vs  x^T_n (a 1x1 conv regressor maps C_s -> C_t where they differ)   [l1]
 *   ft    translator_n(x^S)  vs  teacher n's paraphraser factor    [ft]
 *
 *   L = sum_n scale * L1norm(module_n(x^S), target_n),   scale = beta or beta / N
 * Per step: x^S is read once; each module runs forward (train), the loss writes dL/d(module
 * output), the module's backward adds its input gradient to dx^S; dx^S goes to the "final" tap.
 * Modules are trained with the student's optimizer and saved under /<group>/<n> with their
 * momentum under /optim/<group>/<n>.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/distill_modules.h"
#include "feed/distill_term.h"
#include "feed/loss_feed.h"
#include "feed/tensor.h"
#include "feed/train.h"

typedef struct map_variant map_variant;
struct map_variant {
    const char *name;   /* term name */
    const char *metric; /* per-teacher metric prefix: <metric>_<n> */
    const char *group;  /* checkpoint group of module n */
    int target;         /* FEED_OUT_FINAL or FEED_OUT_FACTOR */
    uint64_t seed_mix;  /* module n's seed: run.seed * 1000003 + seed_mix * (n + 1) */
    /* beta and reduce of the variant's section; the module for teacher n (NULL: identity) */
    void (*weight)(const feed_config *cfg, double *beta, int *reduce);
    feed_net *(*module)(const feed_term_setup *s, const int xs[4], int c_target, uint64_t seed);
    void (*describe)(const int xs[4], int c_target, char *buf, size_t cap);
};

typedef struct {
    const map_variant *v;
    int n;                   /* teachers */
    int xs[4];               /* student final map (B, C_s, H, W) */
    size_t xs_elems;
    int *c_target;           /* [n] channels of each target */
    size_t *target_elems;    /* [n] */
    feed_net **module;       /* [n], NULL entries: identity */
    float **momentum;        /* [n] */
    float *dxs;              /* (B, C_s, H, W) */
    float *du;               /* (B, max C_target, H, W) */
    float scale;
    feed_term_losses losses; /* "<metric>_<n>" */
} map_term;

static void *map_create(const map_variant *v, const feed_term_setup *s) {
    map_term *t = feed_xcalloc(1, sizeof *t, "distillation term");
    t->v = v;
    t->n = s->n_teachers;
    FEED_CHECK(s->taps->get(s->taps->ctx, "final", t->xs), "this is a bug", "student has no 'final' tap");
    t->xs_elems = (size_t)t->xs[0] * t->xs[1] * t->xs[2] * t->xs[3];
    t->c_target = feed_xcalloc((size_t)t->n, sizeof *t->c_target, "term shapes");
    t->target_elems = feed_xcalloc((size_t)t->n, sizeof *t->target_elems, "term shapes");
    t->module = feed_xcalloc((size_t)t->n, sizeof *t->module, "term modules");
    t->momentum = feed_xcalloc((size_t)t->n, sizeof *t->momentum, "term momentum");
    feed_term_losses_init(&t->losses, t->n, v->metric, true);
    double beta;
    int reduce;
    v->weight(s->cfg, &beta, &reduce);
    t->scale = feed_term_scale(beta, reduce, t->n);
    size_t max_target = 0;
    for (int k = 0; k < t->n; k++) {
        const feed_teacher_layout *l = &s->teachers[k];
        if (l->batch != t->xs[0] || l->final_h != t->xs[2] || l->final_w != t->xs[3])
            FEED_INPUT_ERROR("teachers may have other channels than the student, but the same final map height "
                             "and width (and the same batch)",
                             "%s: teacher %d (%s) has a final map of %dx%dx%dx%d, the student %dx%dx%dx%d", v->name,
                             k + 1, s->cfg->distill.teachers.v[k], l->batch, l->final_c, l->final_h, l->final_w,
                             t->xs[0], t->xs[1], t->xs[2], t->xs[3]);
        t->c_target[k] = v->target == FEED_OUT_FACTOR ? l->factor_c : l->final_c;
        t->target_elems[k] = (size_t)t->xs[0] * t->c_target[k] * t->xs[2] * t->xs[3];
        max_target = t->target_elems[k] > max_target ? t->target_elems[k] : max_target;
        uint64_t seed = s->seed * 1000003u + v->seed_mix * (uint64_t)(k + 1);
        t->module[k] = v->module(s, t->xs, t->c_target[k], seed);
        if (t->module[k]) t->momentum[k] = feed_sgd_add_net(s->sgd, t->module[k]);
    }
    t->dxs = feed_xaligned(t->xs_elems * sizeof(float), "dL/dx^S");
    t->du = feed_xaligned((max_target ? max_target : 1) * sizeof(float), "dL/d(module output)");
    return t;
}

static void map_step(void *self, const feed_term_batch *b) {
    map_term *t = self;
    const float *xs = b->taps->get(b->taps->ctx, "final", NULL); /* (B, C_s, H, W) */
    int B = t->xs[0];
    memset(t->dxs, 0, t->xs_elems * sizeof(float));
    feed_term_losses_begin(&t->losses);
    for (int k = 0; k < t->n; k++) {
        const float *target = t->v->target == FEED_OUT_FACTOR ? b->teachers[k].factor : b->teachers[k].final;
        size_t dim = t->target_elems[k] / (size_t)B;
        if (t->module[k]) {
            feed_net_forward(t->module[k], xs, 1);
            t->losses.last[k] = feed_loss_normalised_l1(feed_net_output(t->module[k]), target, B, dim, t->scale, t->du, 0);
            feed_net_backward(t->module[k], t->du);
            feed_vec_add(t->dxs, feed_net_input_grad(t->module[k]), t->xs_elems);
        } else {
            t->losses.last[k] = feed_loss_normalised_l1(xs, target, B, dim, t->scale, t->dxs, 1);
        }
    }
    b->taps->add_grad(b->taps->ctx, "final", t->dxs);
}

static void map_save(void *self, feed_ckpt_writer *w) {
    map_term *t = self;
    for (int k = 0; k < t->n; k++) {
        if (!t->module[k]) continue;
        feed_net_save(w, t->module[k], feed_fmt("%s/%d", t->v->group, k));
        feed_net_save_flat(w, t->module[k], t->momentum[k], feed_fmt("optim/%s/%d", t->v->group, k));
    }
}

static void map_restore(void *self, const feed_ckpt *ck) {
    map_term *t = self;
    for (int k = 0; k < t->n; k++) {
        if (!t->module[k]) continue;
        feed_net_load(ck, t->module[k], feed_fmt("%s/%d", t->v->group, k));
        feed_net_load_flat(ck, t->module[k], t->momentum[k], feed_fmt("optim/%s/%d", t->v->group, k));
    }
}

static feed_term_losses *map_losses(void *self) { return &((map_term *)self)->losses; }

static void map_describe(void *self, int k, char *buf, size_t cap) {
    map_term *t = self;
    t->v->describe(t->xs, t->c_target[k], buf, cap);
}

static feed_net *map_module(void *self, int k) { return ((map_term *)self)->module[k]; }

static void map_destroy(void *self) {
    map_term *t = self;
    for (int k = 0; k < t->n; k++) feed_net_free(t->module[k]), free(t->momentum[k]);
    free(t->c_target), free(t->target_elems), free(t->module), free(t->momentum);
    feed_term_losses_free(&t->losses);
    free(t->dxs), free(t->du), free(t);
}

/* ---- feed: one NTL per teacher ---- */

static void feed_weight(const feed_config *cfg, double *beta, int *reduce) {
    *beta = cfg->feed.beta, *reduce = cfg->feed.beta_reduce;
}
static feed_net *feed_module(const feed_term_setup *s, const int xs[4], int c_t, uint64_t seed) {
    return feed_ntl_build(xs[0], xs[1], c_t, xs[2], xs[3], s->cfg->feed.ntl_bn, seed);
}
static void feed_describe(const int xs[4], int c_t, char *buf, size_t cap) {
    snprintf(buf, cap, "NTL %d -> %d channels", xs[1], c_t);
}
static const map_variant feed_variant = {"feed", "feed_loss", "ntl", FEED_OUT_FINAL, 17, feed_weight, feed_module,
                                         feed_describe};

/* ---- l1: the student's own map, a 1x1 regressor where channels differ ---- */

static void l1_weight(const feed_config *cfg, double *beta, int *reduce) {
    *beta = cfg->l1.beta, *reduce = cfg->l1.beta_reduce;
}
static feed_net *l1_module(const feed_term_setup *s, const int xs[4], int c_t, uint64_t seed) {
    (void)s;
    return c_t == xs[1] ? NULL : feed_regressor_build(xs[0], xs[1], c_t, xs[2], xs[3], seed);
}
static void l1_describe(const int xs[4], int c_t, char *buf, size_t cap) {
    if (c_t == xs[1]) snprintf(buf, cap, "the student's final map itself (%d channels)", c_t);
    else snprintf(buf, cap, "a 1x1 conv regressor %d -> %d channels (teacher is wider/narrower)", xs[1], c_t);
}
static const map_variant l1_variant = {"l1", "l1_loss", "regressor", FEED_OUT_FINAL, 43, l1_weight, l1_module,
                                       l1_describe};

/* ---- ft: a translator per teacher against its paraphraser's factor ---- */

static void ft_weight(const feed_config *cfg, double *beta, int *reduce) {
    *beta = cfg->ft.beta, *reduce = cfg->ft.beta_reduce;
}
static feed_net *ft_module(const feed_term_setup *s, const int xs[4], int c_f, uint64_t seed) {
    (void)s;
    return feed_translator_build(xs[0], xs[1], c_f, xs[2], xs[3], seed);
}
static void ft_describe(const int xs[4], int c_f, char *buf, size_t cap) {
    snprintf(buf, cap, "translator %d -> %d channels against the paraphraser's factor", xs[1], c_f);
}
static const map_variant ft_variant = {"ft", "ft_loss", "translator", FEED_OUT_FACTOR, 31, ft_weight, ft_module,
                                       ft_describe};

static void *feed_create(const feed_term_setup *s) { return map_create(&feed_variant, s); }
static void *l1_create(const feed_term_setup *s) { return map_create(&l1_variant, s); }
static void *ft_create(const feed_term_setup *s) { return map_create(&ft_variant, s); }

#define MAP_OPS(name, target, create_fn) \
    {name, target, create_fn, map_step, map_save, map_restore, map_losses, map_describe, map_module, map_destroy}
const feed_term_ops feed_term_feed = MAP_OPS("feed", FEED_OUT_FINAL, feed_create);
const feed_term_ops feed_term_l1 = MAP_OPS("l1", FEED_OUT_FINAL, l1_create);
const feed_term_ops feed_term_ft = MAP_OPS("ft", FEED_OUT_FACTOR, ft_create);
