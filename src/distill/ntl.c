/* ntl.c - FEED's non-linear transformation layer on the engine's net builder. */
#include <stdio.h>

#include "feed/loss_feed.h"
#include "feed/pfeed.h"
#include "feed/tensor.h"

feed_net *feed_ntl_build(int batch, int c_s, int c_t, int h, int w, int bn, uint64_t seed) {
    feed_nb *nb = feed_nb_create(batch, c_s, h, w); /* value 0: x^S (B, C_s, H, W) */
    int x = 0;
    for (int i = 1; i <= 3; i++) {
        char conv[16], norm[16];
        snprintf(conv, sizeof conv, "conv%d", i);
        snprintf(norm, sizeof norm, "bn%d", i);
        x = feed_nb_conv(nb, conv, x, c_t, 3, 1, 1, 1, 1); /* 3x3, stride 1, pad 1, bias */
        if (bn) x = feed_nb_bn(nb, norm, x, 0);
        x = feed_nb_leaky_relu(nb, x, 0.1f);
    }
    feed_nb_output(nb, x); /* (B, C_t, H, W) */
    feed_net_options opt = {.seed = seed, .input_grad = 1};
    return feed_nb_build(nb, &opt);
}

double feed_ntl_feed_term(feed_net *ntl, const float *xs, const float *tmap, int batch, size_t ntl_elems,
                          size_t xs_elems, float scale, float *du, float *dxs) {
    feed_net_forward(ntl, xs, 1);
    double loss = feed_loss_normalised_l1(feed_net_output(ntl), tmap, batch, ntl_elems / (size_t)batch, scale, du, 0);
    feed_net_backward(ntl, du);
    feed_vec_add(dxs, feed_net_input_grad(ntl), xs_elems);
    return loss;
}

uint64_t feed_batch_id(const int64_t *idx, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        uint64_t v = (uint64_t)idx[i];
        for (int b = 0; b < 8; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}
