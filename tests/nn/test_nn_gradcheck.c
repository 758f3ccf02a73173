/* test_nn_gradcheck.c - central finite differences against backward() for every layer type
 * and option, and for small whole models (aliasing, deferred and accumulated gradients).
 *
 * loss = sum_i out_i * R_i (R fixed random), accumulated in double; dloss/dout = R.
 * For the input and every parameter, up to NPICK elements are perturbed by +-h and
 * (L+ - L-)/2h is compared with the analytic gradient: max |fd - an| over the picked
 * elements divided by max(|an|) over the tensor must stay below TOL (fp32 forward).
 * The checker itself is tested: a gradient scaled by 1.5 must be rejected.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/engine.h"
#include "feed/models.h"
#include "feed/net.h"
#include "feed/rng.h"
#include "feed_test.h"

#define NPICK 12
#define TOL 2e-2

typedef struct fd_case {
    feed_net *net;
    float *x, *R;
    size_t nx, nout;
    int train;
} fd_case;

static double loss_of(fd_case *c) {
    feed_net_set_step(c->net, 7); /* fixed dropout mask */
    feed_net_forward(c->net, c->x, c->train);
    const float *o = feed_net_output(c->net);
    double s = 0;
    for (size_t i = 0; i < c->nout; i++) s += (double)o[i] * c->R[i];
    return s;
}

/* Compare an analytic gradient with central differences on `n` elements of `vals`;
 * `apply` writes vals back into the net (NULL for the input, which is read directly). */
/* One-sided and central difference quotients of the loss along element i. */
static void fd_at(fd_case *c, float *vals, size_t i, int entry, double h, double *fwd, double *bwd, double *central) {
    float orig = vals[i];
    double l0 = loss_of(c);
    vals[i] = (float)(orig + h);
    if (entry >= 0) feed_net_set(c->net, entry, vals);
    double lp = loss_of(c);
    vals[i] = (float)(orig - h);
    if (entry >= 0) feed_net_set(c->net, entry, vals);
    double lm = loss_of(c);
    vals[i] = orig;
    if (entry >= 0) feed_net_set(c->net, entry, vals);
    /* the steps actually taken in fp32 */
    double hp = (double)(float)(orig + h) - orig, hm = orig - (double)(float)(orig - h);
    *fwd = (lp - l0) / hp;
    *bwd = (l0 - lm) / hm;
    *central = (lp - lm) / (hp + hm);
}

static int g_skipped, g_compared;

/* Compare an analytic gradient with central differences on up to NPICK elements of `vals`
 * (entry >= 0: a parameter written back with feed_net_set; -1: the input, read directly).
 * An element whose forward and backward one-sided quotients disagree has a kink (ReLU, max
 * pool) within +-h and is skipped; the rest must agree with the analytic value. */
static double fd_error(fd_case *c, float *vals, size_t n, const float *an, int entry, double h) {
    double maxan = 1e-6, maxerr = 0;
    for (size_t i = 0; i < n; i++) maxan = fmax(maxan, fabs(an[i]));
    size_t npick = n < NPICK ? n : NPICK;
    for (size_t k = 0; k < npick; k++) {
        size_t i = n <= NPICK ? k : (k * 7919u + 13u) % n;
        double fw, bw, fd;
        fd_at(c, vals, i, entry, h, &fw, &bw, &fd);
        if (fabs(fw - bw) > 0.25 * TOL * maxan) { /* a kink inside [-h, h] */
            g_skipped++;
            continue;
        }
        g_compared++;
        maxerr = fmax(maxerr, fabs(fd - an[i]));
        if (getenv("FD_DEBUG")) printf("    [%zu] fd %.6f an %.6f\n", i, fd, an[i]);
    }
    return maxerr / maxan;
}

/* Check input gradient (if planned) and every parameter gradient of net. */
static void check_net(const char *what, feed_net *net, int train, int input_grad, double h) {
    fd_case c = {.net = net, .train = train};
    int d[4];
    int nd = feed_net_output_shape(net, d);
    c.nout = 1;
    for (int i = 0; i < nd; i++) c.nout *= (size_t)d[i];
    /* input shape from the first tap-free way: the net's batch and the planned input */
    extern size_t test_input_numel;
    c.nx = test_input_numel;
    c.x = malloc(c.nx * sizeof(float));
    c.R = malloc(c.nout * sizeof(float));
    for (size_t i = 0; i < c.nx; i++) c.x[i] = feed_rng_normal(11, FEED_RNG_TEST, i);
    for (size_t i = 0; i < c.nout; i++) c.R[i] = feed_rng_normal(12, FEED_RNG_TEST, i);

    loss_of(&c);
    feed_net_backward(net, c.R);
    if (input_grad) {
        float *an = malloc(c.nx * sizeof(float));
        memcpy(an, feed_net_input_grad(net), c.nx * sizeof(float));
        /* analytic grads of params must be saved before FD forwards overwrite nothing: grads
         * are only written by backward, so they stay valid */
        double e = fd_error(&c, c.x, c.nx, an, -1, h);
        feed_test_checks++;
        if (!(e <= TOL)) feed_test_fail(__FILE__, __LINE__, "%s: input grad rel err %.3g", what, e);
        /* the checker must reject a wrong gradient */
        for (size_t i = 0; i < c.nx; i++) an[i] *= 1.5f;
        double ebad = fd_error(&c, c.x, c.nx, an, -1, h);
        feed_test_checks++;
        if (!(ebad > TOL)) feed_test_fail(__FILE__, __LINE__, "%s: checker accepted a 50%% wrong gradient (%.3g)", what, ebad);
        free(an);
    }
    for (int k = 0; k < feed_net_num_entries(net); k++) {
        const feed_param_info *pi = feed_net_entry(net, k);
        if (pi->kind != FEED_PARAM) continue;
        float *an = malloc(pi->numel * sizeof(float)), *vals = malloc(pi->numel * sizeof(float));
        feed_net_get_grad(net, k, an);
        feed_net_get(net, k, vals);
        double e = fd_error(&c, vals, pi->numel, an, k, h);
        feed_test_checks++;
        if (!(e <= TOL)) feed_test_fail(__FILE__, __LINE__, "%s: %s grad rel err %.3g", what, pi->name, e);
        free(an);
        free(vals);
    }
    printf("  checked %-28s (%s)\n", what, train ? "train" : "eval");
    free(c.x);
    free(c.R);
}

size_t test_input_numel;

static feed_nb *nb_new(int B, int C, int H, int W) {
    test_input_numel = (size_t)B * C * H * W;
    return feed_nb_create(B, C, H, W);
}

static feed_net *build(feed_nb *nb, int input_grad) {
    feed_net_options o = {.seed = 5, .input_grad = input_grad};
    return feed_nb_build(nb, &o);
}

static void set_bn_stats(feed_net *net, const char *bn) {
    char n[128];
    snprintf(n, sizeof n, "%s.running_mean", bn);
    int i = feed_net_find(net, n);
    const feed_param_info *pi = feed_net_entry(net, i);
    float *v = malloc(pi->numel * sizeof(float));
    for (size_t k = 0; k < pi->numel; k++) v[k] = 0.3f * feed_rng_normal(3, FEED_RNG_TEST, k);
    feed_net_set(net, i, v);
    snprintf(n, sizeof n, "%s.running_var", bn);
    i = feed_net_find(net, n);
    for (size_t k = 0; k < pi->numel; k++) v[k] = 0.5f + feed_rng_uniform(4, FEED_RNG_TEST, k);
    feed_net_set(net, i, v);
    snprintf(n, sizeof n, "%s.weight", bn);
    i = feed_net_find(net, n);
    for (size_t k = 0; k < pi->numel; k++) v[k] = 0.5f + feed_rng_uniform(5, FEED_RNG_TEST, k);
    feed_net_set(net, i, v);
    snprintf(n, sizeof n, "%s.bias", bn);
    i = feed_net_find(net, n);
    for (size_t k = 0; k < pi->numel; k++) v[k] = 0.2f * feed_rng_normal(6, FEED_RNG_TEST, k);
    feed_net_set(net, i, v);
    free(v);
}

static void conv_case(const char *what, int C, int H, int oc, int k, int s, int p, int g, int bias) {
    feed_nb *nb = nb_new(2, C, H, H);
    int y = feed_nb_conv(nb, "c", 0, oc, k, s, p, g, bias);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-2);
    feed_net_free(net);
}

/* 64 -> 64 channels, 3x3, stride 1: the engine's Winograd path (src/nn/conv.c). oneDNN has
 * Winograd kernels for AVX-512 CPUs only; elsewhere this is one more direct case. */
static void winograd_conv_case(void) {
    feed_nb *nb = nb_new(2, 64, 6, 6);
    int y = feed_nb_conv(nb, "c", 0, 64, 3, 1, 1, 1, 1);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    int n = feed_net_winograd_primitives(net);
    if (strncmp(feed_engine_isa(), "avx512_core", 11) == 0) {
        feed_test_checks++;
        if (n != 3) feed_test_fail(__FILE__, __LINE__, "Winograd conv: %d of 3 primitives are Winograd", n);
    } else {
        printf("note: oneDNN ISA %s has no Winograd kernels; %d Winograd primitives\n", feed_engine_isa(), n);
    }
    check_net("conv 3x3 64->64 bias (Winograd)", net, 1, 1, 1e-2);
    feed_net_free(net);
}

static void deconv_case(const char *what, int C, int H, int oc, int k, int s, int p, int op, int g, int bias) {
    feed_nb *nb = nb_new(2, C, H, H);
    int y = feed_nb_deconv(nb, "d", 0, oc, k, s, p, op, g, bias);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-2);
    feed_net_free(net);
}

static void bn_case(const char *what, int relu, int train) {
    /* conv first so the BN input is a blocked layout, as in the models */
    feed_nb *nb = nb_new(3, 4, 5, 5);
    int y = feed_nb_conv(nb, "c", 0, 16, 3, 1, 1, 1, 0);
    y = feed_nb_bn(nb, "bn", y, relu);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    if (!train) set_bn_stats(net, "bn");
    check_net(what, net, train, 1, relu ? 2e-3 : 1e-2);
    feed_net_free(net);
}

static void act_case(const char *what, float slope) {
    feed_nb *nb = nb_new(2, 16, 4, 4);
    int y = feed_nb_conv(nb, "c", 0, 16, 3, 1, 1, 1, 1);
    y = slope == 0 ? feed_nb_relu(nb, y) : feed_nb_leaky_relu(nb, y, slope);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-3);
    feed_net_free(net);
}

static void add_case(const char *what, int relu) {
    /* x feeds a conv and the add: gradient into x = deferred identity + conv contribution */
    feed_nb *nb = nb_new(2, 8, 5, 5);
    int a = feed_nb_conv(nb, "a", 0, 8, 3, 1, 1, 1, 0);
    int b = feed_nb_conv(nb, "b", a, 8, 3, 1, 1, 1, 1);
    int y = feed_nb_add(nb, b, a, relu);
    y = feed_nb_add(nb, y, 0, 0); /* net input as the second operand */
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-3);
    feed_net_free(net);
}

static void pool_case(const char *what, int k, int s, int p) {
    feed_nb *nb = nb_new(2, 16, 7, 7);
    int y = feed_nb_conv(nb, "c", 0, 16, 1, 1, 0, 1, 0);
    y = feed_nb_maxpool(nb, y, k, s, p);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-3);
    feed_net_free(net);
}

static void head_case(const char *what, int gap) {
    feed_nb *nb = nb_new(3, 8, 4, 4);
    int y = feed_nb_conv(nb, "c", 0, 16, 3, 1, 1, 1, 0);
    if (gap) y = feed_nb_avgpool_global(nb, y);
    y = feed_nb_linear(nb, "fc", y, 5);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-2);
    feed_net_free(net);
}

static void dropout_case(void) {
    feed_nb *nb = nb_new(2, 16, 4, 4);
    int y = feed_nb_conv(nb, "c", 0, 16, 3, 1, 1, 1, 0);
    y = feed_nb_dropout(nb, y, 0.3f);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net("dropout p=0.3 fixed mask", net, 1, 1, 1e-2);
    check_net("dropout eval", net, 0, 1, 1e-2);
    feed_net_free(net);
}

static void shortcut_a_case(void) {
    feed_nb *nb = nb_new(2, 16, 6, 6);
    int x = feed_nb_conv(nb, "c", 0, 16, 3, 1, 1, 1, 0);
    int y = feed_nb_shortcut_a(nb, x, 32, 2);
    int z = feed_nb_conv(nb, "d", x, 32, 3, 2, 1, 1, 0);
    y = feed_nb_add(nb, z, y, 1);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    check_net("shortcut A + add relu", net, 1, 1, 1e-3);
    feed_net_free(net);
}

static void taps_case(void) {
    /* a tap gradient alone (dout = R) plus one on an inner value: FD on loss + <G, tap> */
    feed_nb *nb = nb_new(2, 4, 5, 5);
    int x = feed_nb_conv(nb, "c1", 0, 8, 3, 1, 1, 1, 1);
    x = feed_nb_leaky_relu(nb, x, 0.1f);
    feed_nb_tap(nb, "mid", x);
    int y = feed_nb_conv(nb, "c2", x, 8, 3, 1, 1, 1, 1);
    feed_nb_output(nb, y);
    feed_net *net = build(nb, 1);
    size_t nx = test_input_numel, nmid = 2 * 8 * 5 * 5, nout = nmid;
    float *x0 = malloc(nx * sizeof(float)), *R = malloc(nout * sizeof(float)), *G = malloc(nmid * sizeof(float));
    for (size_t i = 0; i < nx; i++) x0[i] = feed_rng_normal(21, FEED_RNG_TEST, i);
    for (size_t i = 0; i < nout; i++) R[i] = feed_rng_normal(22, FEED_RNG_TEST, i);
    for (size_t i = 0; i < nmid; i++) G[i] = feed_rng_normal(23, FEED_RNG_TEST, i);
    feed_net_forward(net, x0, 1);
    feed_net_tap_add_grad(net, "mid", G);
    feed_net_backward(net, R);
    float *an = malloc(nx * sizeof(float));
    memcpy(an, feed_net_input_grad(net), nx * sizeof(float));
    double maxan = 0, maxerr = 0, h = 1e-2;
    for (size_t i = 0; i < nx; i++) maxan = fmax(maxan, fabs(an[i]));
    for (size_t k = 0; k < NPICK; k++) {
        size_t i = (k * 37 + 5) % nx;
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            float o = x0[i];
            x0[i] = (float)(o + (sgn ? -h : h));
            feed_net_forward(net, x0, 1);
            const float *out = feed_net_output(net);
            const float *mid = feed_net_tap(net, "mid", NULL);
            double s = 0;
            for (size_t j = 0; j < nout; j++) s += (double)out[j] * R[j];
            for (size_t j = 0; j < nmid; j++) s += (double)mid[j] * G[j];
            l[sgn] = s;
            x0[i] = o;
        }
        maxerr = fmax(maxerr, fabs((l[0] - l[1]) / (2 * h) - an[i]));
    }
    EXPECT(maxerr / maxan < TOL);
    printf("  checked %-28s rel err %.2g\n", "tap gradient", maxerr / maxan);
    /* the tap gradient is consumed: a second backward without it differs */
    feed_net_forward(net, x0, 1);
    feed_net_backward(net, R);
    double diff = 0;
    for (size_t i = 0; i < nx; i++) diff = fmax(diff, fabs(feed_net_input_grad(net)[i] - an[i]));
    EXPECT(diff > 1e-3);
    free(x0), free(R), free(G), free(an);
    feed_net_free(net);
}

int feed_basic_block(feed_nb *nb, const char *prefix, int x, int cin, int cout, int stride, const char *proj);

/* Randomise every BN's statistics and affine parameters (eval mode is then a generic affine map). */
static void randomise_bns(feed_net *net) {
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const char *n = feed_net_entry(net, i)->name;
        size_t l = strlen(n);
        if (l > 13 && strcmp(n + l - 13, ".running_mean") == 0) {
            char bn[128];
            snprintf(bn, sizeof bn, "%.*s", (int)(l - 13), n);
            set_bn_stats(net, bn);
        }
    }
}

/* Residual blocks as the models build them (small shapes, eval-mode BN so finite differences
 * see a piecewise-linear function): aliasing, deferred identity gradients, accumulation. */
static void block_case(const char *what, int kind) {
    feed_nb *nb = nb_new(2, 3, 6, 6);
    int x = feed_nb_conv(nb, "conv1", 0, 16, 3, 1, 1, 1, 0);
    x = feed_nb_bn(nb, "bn1", x, 1);
    if (kind == 0 || kind == 1) { /* CIFAR ResNet: identity block + downsampling block (A or B) */
        x = feed_basic_block(nb, "l1", x, 16, 16, 1, NULL);
        x = feed_basic_block(nb, "l2", x, 16, 32, 2, kind == 0 ? NULL : "shortcut");
    } else if (kind == 2) { /* WRN pre-activation block with projection, then identity block */
        for (int b = 0; b < 2; b++) {
            int cout = 32, stride = b == 0 ? 2 : 1;
            char nm[64];
            snprintf(nm, sizeof nm, "w%d.bn1", b);
            int o = feed_nb_bn(nb, nm, x, 1);
            snprintf(nm, sizeof nm, "w%d.conv1", b);
            int y = feed_nb_conv(nb, nm, o, cout, 3, stride, 1, 1, 0);
            snprintf(nm, sizeof nm, "w%d.bn2", b);
            y = feed_nb_bn(nb, nm, y, 1);
            y = feed_nb_dropout(nb, y, 0.2f);
            snprintf(nm, sizeof nm, "w%d.conv2", b);
            y = feed_nb_conv(nb, nm, y, cout, 3, 1, 1, 1, 0);
            int sc = x;
            if (b == 0) {
                snprintf(nm, sizeof nm, "w%d.shortcut", b);
                sc = feed_nb_conv(nb, nm, o, cout, 1, stride, 0, 1, 0);
            }
            x = feed_nb_add(nb, y, sc, 0);
        }
    } else { /* ResNeXt bottleneck with grouped 3x3 and projection */
        int y = feed_nb_conv(nb, "n.conv1", x, 16, 1, 1, 0, 1, 0);
        y = feed_nb_bn(nb, "n.bn1", y, 1);
        y = feed_nb_conv(nb, "n.conv2", y, 16, 3, 2, 1, 4, 0);
        y = feed_nb_bn(nb, "n.bn2", y, 1);
        y = feed_nb_conv(nb, "n.conv3", y, 32, 1, 1, 0, 1, 0);
        y = feed_nb_bn(nb, "n.bn3", y, 0);
        int sc = feed_nb_conv(nb, "n.shortcut.0", x, 32, 1, 2, 0, 1, 0);
        sc = feed_nb_bn(nb, "n.shortcut.1", sc, 0);
        x = feed_nb_add(nb, y, sc, 1);
    }
    feed_nb_tap(nb, "final", x);
    x = feed_nb_avgpool_global(nb, x);
    feed_nb_output(nb, feed_nb_linear(nb, "fc", x, 5));
    feed_net *net = build(nb, 1);
    randomise_bns(net);
    check_net(what, net, 0, 1, 1e-3);
    feed_net_free(net);
}

/* The FEED NTL (3 x conv3x3+bias+LeakyReLU(0.1), optional BN) and the FT paraphraser
 * (conv, conv, conv, deconv, deconv, deconv, each + LeakyReLU) as layer stacks. */
static void stack_case(const char *what, int kind) {
    feed_nb *nb = nb_new(2, 8, 4, 4);
    int x = 0, cs = 8, ct = 16;
    if (kind < 2) {
        for (int i = 1; i <= 3; i++) {
            char n[16];
            snprintf(n, sizeof n, "conv%d", i);
            x = feed_nb_conv(nb, n, x, ct, 3, 1, 1, 1, 1);
            if (kind == 1) {
                snprintf(n, sizeof n, "bn%d", i);
                x = feed_nb_bn(nb, n, x, 0);
            }
            x = feed_nb_leaky_relu(nb, x, 0.1f);
        }
    } else {
        int ch[4] = {cs, cs, 2 * cs, 2 * cs};
        for (int i = 0; i < 3; i++) {
            char n[24];
            snprintf(n, sizeof n, "encoder.%d", 2 * i);
            x = feed_nb_leaky_relu(nb, feed_nb_conv(nb, n, x, ch[i + 1], 3, 1, 1, 1, 1), 0.1f);
        }
        int dch[3] = {2 * cs, cs, cs};
        for (int i = 0; i < 3; i++) {
            char n[24];
            snprintf(n, sizeof n, "decoder.%d", 2 * i);
            x = feed_nb_leaky_relu(nb, feed_nb_deconv(nb, n, x, dch[i], 3, 1, 1, 0, 1, 1), 0.1f);
        }
    }
    feed_nb_output(nb, x);
    feed_net *net = build(nb, 1);
    check_net(what, net, 1, 1, 1e-3);
    feed_net_free(net);
}

int main(void) {
    conv_case("conv 3x3 s1 p1 bias", 4, 6, 8, 3, 1, 1, 1, 1);
    conv_case("conv 3x3 s2 p1", 16, 7, 16, 3, 2, 1, 1, 0);
    conv_case("conv 3x3 groups2 p0 bias", 8, 6, 16, 3, 1, 0, 2, 1);
    conv_case("conv 1x1 s2", 16, 6, 32, 1, 2, 0, 1, 0);
    conv_case("conv 5x5 s1 p2 groups4", 16, 6, 16, 5, 1, 2, 4, 0);
    winograd_conv_case();
    deconv_case("deconv 3x3 s1 p1 bias", 8, 5, 16, 3, 1, 1, 0, 1, 1);
    deconv_case("deconv 3x3 s2 p1 op1", 16, 4, 8, 3, 2, 1, 1, 1, 0);
    deconv_case("deconv 3x3 groups2", 8, 4, 8, 3, 1, 1, 0, 2, 1);
    bn_case("bn train", 0, 1);
    bn_case("bn train + relu", 1, 1);
    bn_case("bn eval", 0, 0);
    bn_case("bn eval + relu", 1, 0);
    act_case("relu", 0.0f);
    act_case("leaky relu 0.1", 0.1f);
    add_case("add (+ identity, accumulate)", 0);
    add_case("add relu", 1);
    pool_case("maxpool 3x3 s2 p1", 3, 2, 1);
    pool_case("maxpool 2x2 s2", 2, 2, 0);
    head_case("gap + linear", 1);
    head_case("linear on 4-D", 0);
    dropout_case();
    shortcut_a_case();
    taps_case();
    /* the models' blocks (whole models in train mode are compared with PyTorch in
     * test_nn_vs_torch: finite differences through many ReLUs and batch statistics of tiny
     * batches are too curved to be a sharp test) */
    block_case("resnet blocks, option A", 0);
    block_case("resnet blocks, option B", 1);
    block_case("wrn blocks (dropout eval)", 2);
    block_case("resnext bottleneck, groups 4", 3);
    stack_case("NTL stack", 0);
    stack_case("NTL stack with BN", 1);
    stack_case("FT paraphraser", 2);
    printf("compared %d elements, skipped %d at kinks\n", g_compared, g_skipped);
    EXPECT(g_skipped * 10 < g_compared); /* kinks are rare: a broken backward cannot hide there */
    return feed_test_finish("test_nn_gradcheck");
}
