/* test_ntl_vs_torch.c - FEED with NTLs against PyTorch (tools/torch_fixtures.py,
 * feed_loss.h5): two teachers of 32 and 16 channels on a 16-channel student map.
 * Each NTL's output, FEED loss, gradient into its output, every NTL parameter gradient and
 * the summed gradient into x^S must match within 1e-5 relative (max abs diff / max abs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/loss_feed.h"
#include "feed/distill_modules.h"
#include "feed_test.h"
#include "fixture_read.h"

#define TOL 1e-5

static void expect_close(const char *what, const float *ours, const float *ref, size_t n) {
    double d = feed_test_max_rel_diff(ours, ref, n);
    printf("  %-40s max rel diff %.3g\n", what, d);
    feed_test_checks++;
    if (!(d <= TOL)) feed_test_fail(__FILE__, __LINE__, "%s differs from PyTorch: %.3g > %.0e", what, d, TOL);
}

int main(void) {
    hid_t f = fixture_open("feed_loss.h5");
    int B = (int)fixture_attr(f, "/", "batch", 0), Cs = (int)fixture_attr(f, "/", "student_channels", 0);
    int H = (int)fixture_attr(f, "/", "height", 0), W = (int)fixture_attr(f, "/", "width", 0);
    int N = (int)fixture_attr(f, "/", "num_teachers", 0);
    float beta = (float)fixture_attr(f, "/", "beta", 0);
    float *xs = fixture_floats(f, "student_map", NULL); /* (B, Cs, H, W) */
    size_t ns = (size_t)B * Cs * H * W;
    float *dxs = calloc(ns, sizeof(float));
    double total = 0;
    for (int n = 0; n < N; n++) {
        int Ct = (int)fixture_attr(f, "/", "teacher_channels", n);
        size_t nt = (size_t)B * Ct * H * W;
        feed_net *ntl = feed_ntl_build(B, Cs, Ct, H, W, 0, 1);
        char key[256];
        for (int i = 0; i < feed_net_num_entries(ntl); i++) {
            const feed_param_info *e = feed_net_entry(ntl, i);
            char path[128];
            snprintf(path, sizeof path, "%s", e->name);
            for (char *c = path; *c; c++) if (*c == '.') *c = '/';
            snprintf(key, sizeof key, "teacher/%d/ntl/%s", n, path);
            float *w = fixture_floats(f, key, NULL);
            feed_net_set(ntl, i, w);
            free(w);
        }
        feed_net_forward(ntl, xs, 1);
        snprintf(key, sizeof key, "teacher/%d/ntl_out", n);
        float *ref_out = fixture_floats(f, key, NULL);
        snprintf(key, sizeof key, "NTL %d output (%d -> %d channels)", n, Cs, Ct);
        expect_close(key, feed_net_output(ntl), ref_out, nt);

        snprintf(key, sizeof key, "teacher/%d/map", n);
        float *tmap = fixture_floats(f, key, NULL);
        float *du = malloc(nt * sizeof(float));
        double loss = feed_loss_normalised_l1(feed_net_output(ntl), tmap, B, nt / B, beta, du, 0);
        total += beta * loss;
        snprintf(key, sizeof key, "teacher/%d/loss", n);
        EXPECT_NEAR_REL(loss, fixture_scalar(f, key), TOL);
        snprintf(key, sizeof key, "teacher/%d/grad_ntl_out", n);
        float *ref_du = fixture_floats(f, key, NULL);
        expect_close("dL/dNTL output", du, ref_du, nt);

        feed_net_backward(ntl, du);
        for (int i = 0; i < feed_net_num_entries(ntl); i++) {
            const feed_param_info *e = feed_net_entry(ntl, i);
            char path[128];
            snprintf(path, sizeof path, "%s", e->name);
            for (char *c = path; *c; c++) if (*c == '.') *c = '/';
            snprintf(key, sizeof key, "teacher/%d/grads/ntl/%s", n, path);
            float *ref_g = fixture_floats(f, key, NULL);
            float *g = malloc(e->numel * sizeof(float));
            feed_net_get_grad(ntl, i, g);
            snprintf(key, sizeof key, "NTL %d grad %s", n, e->name);
            expect_close(key, g, ref_g, e->numel);
            free(ref_g), free(g);
        }
        const float *dx = feed_net_input_grad(ntl);
        for (size_t i = 0; i < ns; i++) dxs[i] += dx[i];
        free(ref_out), free(tmap), free(du), free(ref_du);
        feed_net_free(ntl);
    }
    EXPECT_NEAR_REL(total, fixture_scalar(f, "total_loss"), TOL);
    float *ref_dxs = fixture_floats(f, "grad_student_map", NULL);
    expect_close("dL/dx^S through both NTLs", dxs, ref_dxs, ns);
    free(ref_dxs), free(dxs), free(xs);
    fixture_close(f);
    return feed_test_finish("test_ntl_vs_torch");
}
