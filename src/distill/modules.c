/* modules.c - NTL, FT translator and paraphraser, L1 regressor (distill_modules.h). */
#include <stdio.h>
#include <stdlib.h>

#include <math.h>
#include <string.h>

#include "feed/check.h"
#include "feed/engine.h"
#include "feed/distill_modules.h"
#include "feed/rng.h"

/* n 3x3 stride-1 pad-1 (transposed if deconv) convolutions with bias, named <kind><first>..,
 * to channels[0..n-1], each followed by (BN bn<i>, then) LeakyReLU(0.1). Returns the output. */
static int leaky_stack(feed_nb *nb, int x, int n, const int *channels, const char *kind, int first, int bn) {
    for (int i = 0; i < n; i++) {
        char name[16], norm[16];
        snprintf(name, sizeof name, "%s%d", kind, first + i);
        snprintf(norm, sizeof norm, "bn%d", first + i);
        if (kind[0] == 'd')
            x = feed_nb_deconv(nb, name, x, channels[i], 3, 1, 1, 0, 1, 1);
        else
            x = feed_nb_conv(nb, name, x, channels[i], 3, 1, 1, 1, 1);
        if (bn) x = feed_nb_bn(nb, norm, x, 0);
        x = feed_nb_leaky_relu(nb, x, 0.1f);
    }
    return x;
}

static feed_net *build(feed_nb *nb, int out, uint64_t seed, int input_grad, int inference_only) {
    feed_nb_output(nb, out);
    feed_net_options opt = {.seed = seed, .input_grad = input_grad, .inference_only = inference_only,
                            .precision = feed_engine_precision(inference_only)};
    return feed_nb_build(nb, &opt);
}

feed_net *feed_ntl_build(int batch, int c_s, int c_t, int h, int w, int bn, uint64_t seed) {
    feed_nb *nb = feed_nb_create(batch, c_s, h, w); /* x^S (B, C_s, H, W) */
    const int ch[3] = {c_t, c_t, c_t};
    return build(nb, leaky_stack(nb, 0, 3, ch, "conv", 1, bn), seed, 1, 0); /* (B, C_t, H, W) */
}

/* PyTorch's default initialisation of Conv2d / ConvTranspose2d (kaiming_uniform with a = sqrt(5)):
 * weight and bias uniform in +-1/sqrt(fan_in), fan_in = weight.shape[1] * k * k. FT's
 * official code keeps it for the translator and the paraphraser; with the NTL's Kaiming-normal
 * weights a six-layer paraphraser at lr 0.1 can diverge. */
static void torch_default_init(feed_net *net, uint64_t seed) {
    double bound = 0;
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->kind != FEED_PARAM) continue;
        if (e->ndims == 4) bound = 1.0 / sqrt((double)(e->shape[1] * e->shape[2] * e->shape[3]));
        float *v = feed_xmalloc(e->numel * sizeof(float), "initial values");
        for (size_t j = 0; j < e->numel; j++)
            v[j] = (float)(bound * (2.0 * feed_rng_uniform(seed, FEED_RNG_INIT, ((uint64_t)i << 40) + j) - 1.0));
        feed_net_set(net, i, v);
        free(v);
    }
}

feed_net *feed_translator_build(int batch, int c_s, int c_f, int h, int w, uint64_t seed) {
    feed_nb *nb = feed_nb_create(batch, c_s, h, w);
    const int ch[3] = {c_s, c_f, c_f};
    feed_net *net = build(nb, leaky_stack(nb, 0, 3, ch, "conv", 0, 0), seed, 1, 0); /* (B, C_f, H, W) */
    torch_default_init(net, seed);
    return net;
}

feed_net *feed_paraphraser_build(int batch, int c_t, int c_f, int h, int w, uint64_t seed, int encoder_only,
                                 int inference_only) {
    feed_nb *nb = feed_nb_create(batch, c_t, h, w); /* x^T (B, C_t, H, W) */
    const int enc[3] = {c_t, c_f, c_f}, dec[3] = {c_f, c_t, c_t};
    int x = leaky_stack(nb, 0, 3, enc, "conv", 0, 0); /* factor (B, C_f, H, W) */
    if (!encoder_only) x = leaky_stack(nb, x, 3, dec, "deconv", 0, 0); /* reconstruction (B, C_t, H, W) */
    feed_net *net = build(nb, x, seed, 0, inference_only);
    torch_default_init(net, seed);
    return net;
}

feed_net *feed_regressor_build(int batch, int c_s, int c_t, int h, int w, uint64_t seed) {
    feed_nb *nb = feed_nb_create(batch, c_s, h, w);
    return build(nb, feed_nb_conv(nb, "conv", 0, c_t, 1, 1, 0, 1, 1), seed, 1, 0); /* (B, C_t, H, W) */
}

void feed_net_copy_params(feed_net *dst, const feed_net *src) {
    for (int i = 0; i < feed_net_num_entries(dst); i++) {
        const feed_param_info *e = feed_net_entry(dst, i);
        int j = feed_net_find(src, e->name);
        FEED_CHECK(j >= 0 && feed_net_entry(src, j)->numel == e->numel, "this is a bug",
                   "no matching '%s' to copy from", e->name);
        void *tmp = feed_xmalloc(e->numel * (e->dtype == FEED_I64 ? 8 : 4) + 8, "parameter copy");
        feed_net_get(src, j, tmp);
        feed_net_set(dst, i, tmp);
        free(tmp);
    }
}
