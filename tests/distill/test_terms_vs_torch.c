/* test_terms_vs_torch.c - every distillation term (src/distill/term_*.c) against PyTorch
 * (tools/torch_fixtures.py, terms.h5): the same student logits and taps, two teachers (one of
 * the student's width, one twice as wide), the term's modules loaded with the fixture's
 * weights. Each term's per-teacher loss, its gradient into the logits or taps and every
 * module parameter's gradient must match within 1e-5 relative (max |diff| / max |reference|);
 * FT's paraphraser after 3 SGD steps within 1e-4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/distill_modules.h"
#include "feed/distill_term.h"
#include "feed/paraphraser.h"
#include "feed/train.h"
#include "fake_student.h"
#include "feed_test.h"
#include "fixture_read.h"

#define TOL 1e-5
#define N_TEACHERS 2
#define STAGES 3

static hid_t fx;
static int B, K;

static void expect_close(const char *what, const float *ours, const float *ref, size_t n, double tol) {
    double d = feed_test_max_rel_diff(ours, ref, n);
    printf("  %-44s max rel diff %.3g\n", what, d);
    feed_test_checks++;
    if (!(d <= tol)) feed_test_fail(__FILE__, __LINE__, "%s differs from PyTorch: %.3g > %.0e", what, d, tol);
}

/* ---- the student as the terms see it: fixture arrays and recorded tap gradients ---- */

static fake_tap taps[STAGES + 1]; /* layer1..3, final */
static fake_student fake = {taps, STAGES + 1};
static feed_student_taps student;

static void load_student(void) {
    static const char *names[] = {"layer1", "layer2", "layer3", "final"};
    for (int i = 0; i <= STAGES; i++) {
        int s = i < STAGES ? i : STAGES - 1;
        int c = (int)fixture_attr(fx, "/", "student_channels", s), hw = (int)fixture_attr(fx, "/", "stage_hw", s);
        taps[i] = (fake_tap){.name = names[i], .dims = {B, c, hw, hw}};
        taps[i].value = fixture_floats(fx, feed_fmt("student/%s", names[i]), NULL);
        taps[i].grad = calloc((size_t)B * c * hw * hw, sizeof(float));
    }
    student = fake_student_taps(&fake);
}

/* ---- teachers: layouts and payload views over fixture arrays ---- */

static feed_teacher_layout layouts[N_TEACHERS];
static feed_teacher_view views[N_TEACHERS];

static void load_teachers(void) {
    for (int n = 0; n < N_TEACHERS; n++) {
        feed_teacher_layout *l = &layouts[n];
        *l = (feed_teacher_layout){.outputs = FEED_OUT_FINAL | FEED_OUT_ATTENTION | FEED_OUT_LOGITS | FEED_OUT_FACTOR,
                                   .batch = B, .stages = STAGES, .classes = K};
        for (int s = 0; s < STAGES; s++) {
            l->stage_c[s] = (int)fixture_attr(fx, "/", "teacher_channels", n * STAGES + s);
            l->stage_h[s] = l->stage_w[s] = (int)fixture_attr(fx, "/", "stage_hw", s);
        }
        l->final_c = l->stage_c[STAGES - 1], l->final_h = l->stage_h[STAGES - 1], l->final_w = l->stage_w[STAGES - 1];
        l->factor_c = (int)fixture_attr(fx, "/", "factor_channels", n);
        views[n].final = fixture_floats(fx, feed_fmt("teacher/%d/final", n), NULL);
        views[n].logits = fixture_floats(fx, feed_fmt("teacher/%d/logits", n), NULL);
        views[n].factor = fixture_floats(fx, feed_fmt("teacher/%d/factor", n), NULL);
        for (int s = 0; s < STAGES; s++)
            views[n].attention[s] = fixture_floats(fx, feed_fmt("teacher/%d/attention/%d", n, s + 1), NULL);
    }
}

/* Set every parameter of net from <group>/<key> of the fixture ('.' -> '/'). */
static void set_from_fixture(feed_net *net, const char *group) {
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        char key[256];
        snprintf(key, sizeof key, "%s/%s", group, feed_net_entry(net, i)->name);
        for (char *c = key; *c; c++) if (*c == '.') *c = '/';
        float *w = fixture_floats(fx, key, NULL);
        feed_net_set(net, i, w);
        free(w);
    }
}

/* Every parameter gradient of net against <group>/<key>. */
static void compare_grads(feed_net *net, const char *group, const char *label) {
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->kind != FEED_PARAM) continue;
        char key[256], what[128];
        snprintf(key, sizeof key, "%s/%s", group, e->name);
        for (char *c = key; *c; c++) if (*c == '.') *c = '/';
        float *ref = fixture_floats(fx, key, NULL), *got = malloc(e->numel * sizeof(float));
        feed_net_get_grad(net, i, got);
        snprintf(what, sizeof what, "%s d/d %s", label, e->name);
        expect_close(what, got, ref, e->numel, TOL);
        free(ref), free(got);
    }
}

static feed_config config(void) {
    feed_config cfg;
    feed_cfg_errors errs = {0};
    const char *ini = "[data]\npath = unused.h5\n[distill]\nteachers = a.h5, b.h5\n";
    EXPECT(feed_config_load_text(&cfg, "test", ini, strlen(ini), 0, NULL, (feed_cfg_load_opts){0}, &errs) == 0);
    feed_cfg_errors_free(&errs);
    return cfg;
}

/* Run term `id` once with its modules set from <name>/teacher/<n>/<module_group>; compare its
 * losses (per teacher; KD: one) and module gradients; return dlogits (caller frees). The tap
 * gradients stay in taps[]. */
static float *run_term(int id, const char *module_group) {
    const feed_term_ops *ops = feed_term_table[id];
    feed_config cfg = config();
    feed_sgd sgd;
    feed_sgd_init(&sgd, (feed_sgd_config){0});
    feed_term_setup setup = {.cfg = &cfg, .taps = &student, .batch = B, .classes = K, .seed = 1, .sgd = &sgd,
                             .n_teachers = N_TEACHERS, .teachers = layouts};
    void *term = ops->create(&setup);
    for (int n = 0; n < N_TEACHERS; n++) {
        feed_net *m = ops->module ? ops->module(term, n) : NULL;
        if (m) set_from_fixture(m, feed_fmt("%s/teacher/%d/%s", ops->name, n, module_group));
    }
    float *logits = fixture_floats(fx, "student/logits", NULL), *dlogits = calloc((size_t)B * K, sizeof(float));
    fake_student_zero_grads(&fake);
    feed_term_batch b = {.taps = &student, .logits = logits, .dlogits = dlogits, .teachers = views};
    ops->step(term, &b);
    const char *names[8];
    double values[8];
    feed_term_losses *losses = ops->losses(term);
    feed_term_losses_commit(losses); /* a one-step epoch */
    int m = feed_term_losses_report(losses, names, values, 8);
    printf("%s:\n", ops->name);
    if (id == FEED_TERM_KD) {
        EXPECT_INT_EQ(m, 1);
        EXPECT_NEAR_REL(values[0], fixture_scalar(fx, "kd/loss"), TOL);
        printf("  kd_loss %.9g (torch %.9g)\n", values[0], fixture_scalar(fx, "kd/loss"));
    } else {
        EXPECT_INT_EQ(m, N_TEACHERS);
        for (int n = 0; n < m; n++) {
            double ref = fixture_scalar(fx, feed_fmt("%s/teacher/%d/loss", ops->name, n));
            EXPECT_NEAR_REL(values[n], ref, TOL);
            printf("  %s %.9g (torch %.9g)\n", names[n], values[n], ref);
        }
    }
    for (int n = 0; n < N_TEACHERS; n++) {
        feed_net *mod = ops->module ? ops->module(term, n) : NULL;
        if (mod) compare_grads(mod, feed_fmt("%s/teacher/%d/grads", ops->name, n), feed_fmt("teacher %d", n));
    }
    ops->destroy(term);
    feed_sgd_free(&sgd);
    feed_config_free(&cfg);
    free(logits);
    return dlogits;
}

static void check_map_term(int id, const char *group) {
    float *dlogits = run_term(id, group);
    float *ref = fixture_floats(fx, feed_fmt("%s/grad_final", feed_term_table[id]->name), NULL);
    expect_close("dL/d final", fake_student_find(&fake, "final")->grad, ref, (size_t)B * 16 * 4 * 4, TOL);
    float zero[1024] = {0};
    EXPECT(memcmp(dlogits, zero, sizeof(float) * B * K) == 0); /* logits untouched */
    free(ref), free(dlogits);
}

static void check_kd(void) {
    float *dlogits = run_term(FEED_TERM_KD, NULL);
    float *ref = fixture_floats(fx, "kd/dlogits", NULL);
    expect_close("alpha * dL/d logits", dlogits, ref, (size_t)B * K, TOL);
    for (int i = 0; i <= STAGES; i++) EXPECT(taps[i].grad[0] == 0.f); /* no tap gradients */
    free(ref), free(dlogits);
}

static void check_at(void) {
    float *dlogits = run_term(FEED_TERM_AT, NULL);
    for (int s = 0; s < STAGES; s++) {
        float *ref = fixture_floats(fx, feed_fmt("at/grad/layer%d", s + 1), NULL);
        const int *d = taps[s].dims;
        expect_close(feed_fmt("dL/d layer%d", s + 1), taps[s].grad, ref, (size_t)d[0] * d[1] * d[2] * d[3], TOL);
        free(ref);
    }
    free(dlogits);
}

/* FT's paraphraser: 3 SGD steps (lr 0.1, momentum 0.9, weight decay 5e-4) of L1 reconstruction. */
static void check_paraphraser_training(void) {
    feed_net *para = feed_paraphraser_build(B, 16, 8, 4, 4, 1, 0, 0);
    set_from_fixture(para, "paraphraser/init");
    feed_sgd sgd;
    feed_sgd_init(&sgd, (feed_sgd_config){.momentum = 0.9f, .weight_decay = 5e-4f});
    float *momentum = feed_sgd_add_net(&sgd, para);
    size_t n = (size_t)B * 16 * 4 * 4;
    float *inputs = fixture_floats(fx, "paraphraser/inputs", NULL), *grad = malloc(n * sizeof(float));
    double *losses = fixture_doubles(fx, "paraphraser/losses", NULL);
    printf("paraphraser training:\n");
    for (int s = 0; s < 3; s++) {
        double loss = feed_paraphraser_step(para, &sgd, inputs + s * n, grad, 0.1);
        printf("  step %d L1 %.9g (torch %.9g)\n", s + 1, loss, losses[s]);
        EXPECT_NEAR_REL(loss, losses[s], 1e-4);
    }
    for (int i = 0; i < feed_net_num_entries(para); i++) {
        const feed_param_info *e = feed_net_entry(para, i);
        char key[128];
        snprintf(key, sizeof key, "paraphraser/after3/%s", e->name);
        for (char *c = key; *c; c++) if (*c == '.') *c = '/';
        float *ref = fixture_floats(fx, key, NULL), *got = malloc(e->numel * sizeof(float));
        feed_net_get(para, i, got);
        expect_close(feed_fmt("after 3 steps: %s", e->name), got, ref, e->numel, 1e-4);
        free(ref), free(got);
    }
    free(inputs), free(grad), free(losses), free(momentum);
    feed_sgd_free(&sgd);
    feed_net_free(para);
}

int main(void) {
    fx = fixture_open("terms.h5");
    B = (int)fixture_attr(fx, "/", "batch", 0);
    K = (int)fixture_attr(fx, "/", "classes", 0);
    load_student();
    load_teachers();
    check_kd();
    check_at();
    check_map_term(FEED_TERM_FEED, "ntl");
    check_map_term(FEED_TERM_L1, "regressor");
    check_map_term(FEED_TERM_FT, "translator");
    check_paraphraser_training();
    fixture_close(fx);
    return feed_test_finish("test_terms_vs_torch");
}
