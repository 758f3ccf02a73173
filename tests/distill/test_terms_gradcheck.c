/* test_terms_gradcheck.c - every distillation term's gradients against central finite
 * differences of its own loss: d/d logits (KD), d/d stage taps (AT), d/d final map and d/d a
 * sample of module parameters (FEED's NTL, L1's regressor, FT's translator), on random data
 * with two teachers of different widths. The loss is the sum of the term's per-teacher
 * metrics times its weight, exactly what the gradient is of.
 *
 * The map terms use an L1 distance: where x +- h crosses a kink (a sign change of u - w) the
 * loss is not differentiable on [x-h, x+h] and the two one-sided differences disagree; such
 * coordinates are skipped (and counted: at most a fifth of a term's checks may be).
 * Elsewhere the central difference must agree within 2% of the largest gradient of the
 * tensor, 5% for module parameters, whose LeakyReLUs add small kinks the one-sided test does
 * not see. A wrong gradient (a missing factor, sign or term) is off by far more. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/distill_term.h"
#include "feed/check.h"
#include "feed/rng.h"
#include "fake_student.h"
#include "feed_test.h"

enum { B = 3, K = 5, N = 2, STAGES = 3 };
static const int S_CH[STAGES] = {3, 4, 6}, HW[STAGES] = {6, 3, 3};
static const int T_CH[N][STAGES] = {{3, 4, 6}, {4, 6, 12}};

static fake_tap taps[STAGES + 1]; /* layer1..3, final */
static fake_student fake = {taps, STAGES + 1};
static feed_student_taps student;

static float logits[B * K], dlogits[B * K];
static feed_teacher_layout layouts[N];
static feed_teacher_view views[N];
static const feed_term_ops *ops;
static void *term;
static double weight; /* the factor between the term's metrics and its loss */

static float *random_floats(size_t n, uint64_t seed, int nonnegative) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float v = (float)feed_rng_normal(seed, FEED_RNG_TEST, i);
        p[i] = nonnegative ? fabsf(v) : v;
    }
    return p;
}

static void setup_data(void) {
    static const char *names[] = {"layer1", "layer2", "layer3", "final"};
    for (int i = 0; i <= STAGES; i++) {
        int s = i < STAGES ? i : STAGES - 1;
        taps[i] = (fake_tap){.name = names[i], .dims = {B, S_CH[s], HW[s], HW[s]}};
        taps[i].value = random_floats(fake_tap_numel(&taps[i]), 100 + (uint64_t)s, 1);
        taps[i].grad = calloc(fake_tap_numel(&taps[i]), sizeof(float));
    }
    student = fake_student_taps(&fake);
    for (int k = 0; k < B * K; k++) logits[k] = 2.f * (float)feed_rng_normal(7, FEED_RNG_TEST, (uint64_t)k);
    for (int n = 0; n < N; n++) {
        feed_teacher_layout *l = &layouts[n];
        *l = (feed_teacher_layout){.outputs = FEED_OUT_FINAL | FEED_OUT_ATTENTION | FEED_OUT_LOGITS | FEED_OUT_FACTOR,
                                   .batch = B, .stages = STAGES, .classes = K};
        for (int s = 0; s < STAGES; s++) l->stage_c[s] = T_CH[n][s], l->stage_h[s] = l->stage_w[s] = HW[s];
        l->final_c = T_CH[n][STAGES - 1], l->final_h = l->final_w = HW[STAGES - 1];
        l->factor_c = l->final_c / 2;
        size_t map = (size_t)B * l->final_c * l->final_h * l->final_w;
        views[n].final = random_floats(map, 200 + (uint64_t)n, 1);
        views[n].factor = random_floats(map / 2, 300 + (uint64_t)n, 1);
        views[n].logits = random_floats((size_t)B * K, 400 + (uint64_t)n, 0);
        for (int s = 0; s < STAGES; s++) { /* unit-norm rows, as teachers send them */
            size_t d = (size_t)HW[s] * HW[s];
            float *q = random_floats((size_t)B * d, 500 + (uint64_t)(10 * n + s), 1);
            for (int b = 0; b < B; b++) {
                double norm = 0;
                for (size_t i = 0; i < d; i++) norm += (double)q[b * d + i] * q[b * d + i];
                for (size_t i = 0; i < d; i++) q[b * d + i] = (float)(q[b * d + i] / sqrt(norm));
            }
            views[n].attention[s] = q;
        }
    }
}

/* The term's loss at the current data (gradients recorded into taps and dlogits). */
static double loss(void) {
    fake_student_zero_grads(&fake);
    memset(dlogits, 0, sizeof dlogits);
    feed_term_batch b = {.taps = &student, .logits = logits, .dlogits = dlogits, .teachers = views};
    ops->step(term, &b);
    const char *names[8];
    double values[8], total = 0;
    feed_term_losses *losses = ops->losses(term);
    feed_term_losses_commit(losses); /* a one-step epoch */
    int m = feed_term_losses_report(losses, names, values, 8);
    for (int i = 0; i < m; i++) total += values[i];
    return weight * total;
}

typedef struct {
    double scale;   /* max |analytic gradient| of the tensor checked */
    int smooth;     /* the loss is differentiable everywhere (KD, AT): no kink test */
    double tol;     /* max |fd - grad| / scale allowed */
    double max_err;
    int checked, skipped;
} fd_stats;

static int term_checked, term_skipped; /* over all tensors of the term under test */

static double max_abs(const float *g, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(g[i]) > m ? fabs(g[i]) : m;
    return m;
}

/* Central difference of the loss in the coordinate *x (set through `set` when not NULL)
 * against the analytic value `grad`. */
static void fd_check(float *x, double grad, double h, fd_stats *st, void (*set)(void)) {
    float keep = *x;
    double l0 = loss();
    *x = keep + (float)h;
    if (set) set();
    double up = loss();
    *x = keep - (float)h;
    if (set) set();
    double down = loss();
    *x = keep;
    if (set) set();
    double right = (up - l0) / h, left = (l0 - down) / h, central = (up - down) / (2 * h);
    if (!st->smooth && fabs(right - left) > 0.05 * st->scale) { /* a kink within [x-h, x+h] */
        st->skipped++;
        return;
    }
    st->checked++;
    if (fabs(central - grad) > st->max_err) st->max_err = fabs(central - grad);
}

static void report(const char *what, const fd_stats *st) {
    double rel = st->max_err / (st->scale > 0 ? st->scale : 1);
    printf("  %-36s %3d checked, %2d at kinks, max |fd - grad| / max |grad| = %.3g\n", what, st->checked,
           st->skipped, rel);
    EXPECT(st->checked > 0 && st->scale > 0);
    EXPECT(rel < st->tol);
    term_checked += st->checked, term_skipped += st->skipped;
}

/* Every element of a tap. */
static void check_tap(const char *name, double h, int smooth) {
    fake_tap *t = fake_student_find(&fake, name);
    size_t n = fake_tap_numel(t);
    loss();
    float *grad = malloc(n * sizeof(float));
    memcpy(grad, t->grad, n * sizeof(float));
    fd_stats st = {.scale = max_abs(grad, n), .smooth = smooth, .tol = 2e-2};
    for (size_t i = 0; i < n; i++) fd_check(&t->value[i], grad[i], h, &st, NULL);
    report(feed_fmt("d/d %s", name), &st);
    free(grad);
}

/* A sample of the parameters of teacher k's module, perturbed through feed_net_set. */
static feed_net *cur_module;
static int cur_entry;
static float *cur_values;
static void set_current(void) { feed_net_set(cur_module, cur_entry, cur_values); }

static void check_module(int k, double h) {
    feed_net *m = ops->module ? ops->module(term, k) : NULL;
    if (!m) return;
    for (int i = 0; i < feed_net_num_entries(m); i++) {
        const feed_param_info *e = feed_net_entry(m, i);
        if (e->kind != FEED_PARAM) continue;
        float *w = malloc(e->numel * sizeof(float)), *g = malloc(e->numel * sizeof(float));
        loss();
        feed_net_get_grad(m, i, g);
        feed_net_get(m, i, w);
        cur_module = m, cur_entry = i, cur_values = w;
        fd_stats st = {.scale = max_abs(g, e->numel), .tol = 5e-2};
        for (size_t j = 0; j < e->numel; j += e->numel / 7 + 1) fd_check(&w[j], g[j], h, &st, set_current);
        report(feed_fmt("d/d module %d %s (sample)", k + 1, e->name), &st);
        free(w), free(g);
    }
}

static void with_term(int id, double w) {
    feed_config cfg;
    feed_cfg_errors errs = {0};
    const char *ini = "[data]\npath = unused.h5\n[distill]\nteachers = a.h5, b.h5\n";
    EXPECT(feed_config_load_text(&cfg, "test", ini, strlen(ini), 0, NULL, (feed_cfg_load_opts){0}, &errs) == 0);
    feed_sgd sgd;
    feed_sgd_init(&sgd, (feed_sgd_config){0});
    ops = feed_term_table[id];
    feed_term_setup s = {.cfg = &cfg, .taps = &student, .batch = B, .classes = K, .seed = 1, .sgd = &sgd,
                         .n_teachers = N, .teachers = layouts};
    term = ops->create(&s);
    weight = w;
    term_checked = term_skipped = 0;
    printf("%s:\n", ops->name);
    if (id == FEED_TERM_KD) {
        loss();
        float grad[B * K];
        memcpy(grad, dlogits, sizeof grad);
        fd_stats st = {.scale = max_abs(grad, B * K), .smooth = 1, .tol = 2e-2};
        for (int i = 0; i < B * K; i++) fd_check(&logits[i], grad[i], 1e-2, &st, NULL);
        report("d/d logits", &st);
    } else if (id == FEED_TERM_AT) {
        for (int s2 = 1; s2 <= STAGES; s2++) check_tap(feed_fmt("layer%d", s2), 1e-2, 1);
    } else {
        check_tap("final", 1e-3, 0);
        for (int k = 0; k < N; k++) check_module(k, 1e-3);
    }
    printf("  %d checked, %d skipped at kinks\n", term_checked, term_skipped);
    EXPECT(term_skipped * 5 <= term_checked + term_skipped);
    ops->destroy(term);
    feed_sgd_free(&sgd);
    feed_config_free(&cfg);
    feed_cfg_errors_free(&errs);
}

int main(void) {
    setup_data();
    with_term(FEED_TERM_KD, 0.9);     /* kd.alpha: the metric is T^2 KL */
    with_term(FEED_TERM_AT, 500);     /* at.beta / 2 */
    with_term(FEED_TERM_FEED, 500);   /* feed.beta */
    with_term(FEED_TERM_L1, 500);     /* l1.beta: identity for teacher 1, a regressor for teacher 2 */
    with_term(FEED_TERM_FT, 500);     /* ft.beta */
    return feed_test_finish("test_terms_gradcheck");
}
