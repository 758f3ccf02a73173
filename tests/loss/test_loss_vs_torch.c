/* test_loss_vs_torch.c - cross-entropy and FEED loss against PyTorch fixtures
 * (ce.h5 and feed_loss.h5 of tools/torch_fixtures.py): values and gradients within 1e-5
 * relative (max |diff| / max |reference| for arrays). */
#include "feed/loss_ce.h"
#include "feed/loss_feed.h"
#include "feed_test.h"
#include "fixture_read.h"

#include <stdio.h>
#include <stdlib.h>

#define TOL 1e-5

static void expect_arrays_close(const char *what, const float *got, const float *want, size_t n) {
    double rel = feed_test_max_rel_diff(got, want, n);
    printf("  %-40s max rel diff %.3g\n", what, rel);
    EXPECT(rel <= TOL);
}

static void check_cross_entropy(void) {
    hid_t f = fixture_open("ce.h5");
    size_t dims[8];
    fixture_shape(f, "logits", dims);
    int batch = (int)dims[0], classes = (int)dims[1];
    float *logits = fixture_floats(f, "logits", NULL);
    int32_t *labels = fixture_ints(f, "labels", NULL);
    float *dlogits = malloc((size_t)batch * classes * sizeof *dlogits);
    const struct { float eps; const char *group; } cases[] = {{0.f, "smoothing_0"}, {0.1f, "smoothing_0p1"}};
    for (int c = 0; c < 2; c++) {
        char name[128];
        double loss = feed_ce_forward_backward(logits, labels, batch, classes, cases[c].eps, dlogits);
        snprintf(name, sizeof name, "%s/loss", cases[c].group);
        EXPECT_NEAR_REL(loss, fixture_scalar(f, name), TOL);
        snprintf(name, sizeof name, "%s/dlogits", cases[c].group);
        float *want = fixture_floats(f, name, NULL);
        expect_arrays_close(name, dlogits, want, (size_t)batch * classes);
        free(want);
    }
    free(logits), free(labels), free(dlogits);
    fixture_close(f);
}

/* pFEED: the loss on each NTL output and d(beta * sum L_FEED)/d(NTL output). */
static void check_feed_with_ntl(hid_t f, int batch, size_t hw, float beta, int teachers) {
    double total = 0;
    for (int n = 0; n < teachers; n++) {
        char name[128];
        size_t dim = (size_t)fixture_attr(f, "/", "teacher_channels", n) * hw, count;
        snprintf(name, sizeof name, "teacher/%d/ntl_out", n);
        float *ntl_out = fixture_floats(f, name, &count);
        EXPECT_INT_EQ(count, (size_t)batch * dim);
        snprintf(name, sizeof name, "teacher/%d/map", n);
        float *teacher = fixture_floats(f, name, NULL);
        float *grad = malloc(count * sizeof *grad);

        double loss = feed_loss_normalised_l1(ntl_out, teacher, batch, dim, beta, grad, 0);
        snprintf(name, sizeof name, "teacher/%d/loss", n);
        EXPECT_NEAR_REL(loss, fixture_scalar(f, name), TOL);
        printf("  teacher %d FEED loss %.9g (torch %.9g)\n", n, loss, fixture_scalar(f, name));
        snprintf(name, sizeof name, "teacher/%d/grad_ntl_out", n);
        float *want = fixture_floats(f, name, NULL);
        expect_arrays_close(name, grad, want, count);
        total += beta * loss;
        free(ntl_out), free(teacher), free(grad), free(want);
    }
    EXPECT_NEAR_REL(total, fixture_scalar(f, "total_loss"), TOL);
}

/* The L1 baseline: the loss on x^S itself, gradients of all teachers accumulated into dx^S. */
static void check_feed_l1_baseline(hid_t f, int batch, size_t dim, float beta, int teachers) {
    size_t count;
    float *student = fixture_floats(f, "student_map", &count);
    float *grad = malloc(count * sizeof *grad);
    double total = 0;
    for (int n = 0; n < teachers; n++) {
        char name[128];
        snprintf(name, sizeof name, "l1/teacher/%d/map", n);
        float *teacher = fixture_floats(f, name, NULL);
        double loss = feed_loss_normalised_l1(student, teacher, batch, dim, beta, grad, n > 0);
        snprintf(name, sizeof name, "l1/teacher/%d/loss", n);
        EXPECT_NEAR_REL(loss, fixture_scalar(f, name), TOL);
        total += beta * loss;
        free(teacher);
    }
    EXPECT_NEAR_REL(total, fixture_scalar(f, "l1/total_loss"), TOL);
    float *want = fixture_floats(f, "l1/grad_student_map", NULL);
    expect_arrays_close("l1/grad_student_map", grad, want, count);
    free(student), free(grad), free(want);
}

static void check_feed_loss(void) {
    hid_t f = fixture_open("feed_loss.h5");
    int batch = (int)fixture_attr(f, "/", "batch", 0);
    int cs = (int)fixture_attr(f, "/", "student_channels", 0);
    size_t hw = (size_t)fixture_attr(f, "/", "height", 0) * (size_t)fixture_attr(f, "/", "width", 0);
    int teachers = (int)fixture_attr(f, "/", "num_teachers", 0);
    float beta = (float)fixture_attr(f, "/", "beta", 0);
    check_feed_with_ntl(f, batch, hw, beta, teachers);
    check_feed_l1_baseline(f, batch, (size_t)cs * hw, beta, teachers);
    fixture_close(f);
}

int main(void) {
    check_cross_entropy();
    check_feed_loss();
    return feed_test_finish("test_loss_vs_torch");
}
