/* shortcut_a.c - CIFAR ResNet option-A shortcut: y = x[:, :, ::s, ::s] with the channels
 * zero-padded to C_out ((C_out-C_in)/2 in front, the rest behind). No parameters.
 * Works on the blocked layout directly (plain, nhwc or one channel block like nChw16c). */
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

typedef struct sa_priv {
    feed_layout4 li, lo;
} sa_priv;

static void sa_plan(feed_net *net, feed_layer *L) {
    sa_priv *P = feed_xcalloc(1, sizeof *P, "shortcut A");
    L->priv = P;
    dnnl_memory_desc_t imd = net_in_md(net, L, 0, 0);
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    /* the output takes the input's layout family */
    static const dnnl_format_tag_t tags[] = {dnnl_nChw16c, dnnl_nChw8c, dnnl_nhwc, dnnl_nchw};
    dnnl_format_tag_t tag = dnnl_nchw;
    for (int i = 0; i < 4; i++) {
        dnnl_memory_desc_t t = net_md_tag(net, 4, in->dims, tags[i]);
        if (feed_md_equal(&t, &imd)) {
            tag = tags[i];
            break;
        }
    }
    dnnl_memory_desc_t omd = net_md_tag(net, 4, out->dims, tag);
    net_set_md(net, L->out, &omd);
    feed_layout4_of(&imd, &P->li, "shortcut A");
    feed_layout4_of(&omd, &P->lo, "shortcut A");
}

/* Element moves between the strided input positions and the shifted output channels:
 * to_out = 1: out[n, c+pf, h, w] = in[n, c, h*s, w*s]; 0: the reverse (the gradient). T is the
 * element type (float or the bits of a bf16: moving does not convert). */
#define SA_MOVE(T, to_out)                                                                                       \
    do {                                                                                                         \
        T *ip = (T *)ibuf, *op = (T *)obuf;                                                                      \
        _Pragma("omp parallel for schedule(static)") for (long long q = 0; q < nc; q++) {                        \
            dnnl_dim_t n = q / C, c = q % C;                                                                     \
            for (dnnl_dim_t h = 0; h < OH; h++)                                                                  \
                for (dnnl_dim_t w = 0; w < OW; w++) {                                                            \
                    size_t io = feed_off4(&P->li, n, c, h * s, w * s), oo = feed_off4(&P->lo, n, c + pf, h, w); \
                    if (to_out)                                                                                  \
                        op[oo] = ip[io];                                                                         \
                    else                                                                                         \
                        ip[io] = op[oo];                                                                         \
                }                                                                                                \
        }                                                                                                        \
    } while (0)

static void sa_move(const feed_net *net, const feed_layer *L, void *ibuf, void *obuf, int to_out) {
    const sa_priv *P = L->priv;
    const feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    dnnl_dim_t C = in->dims[1], OH = out->dims[2], OW = out->dims[3];
    int s = L->stride, pf = (L->oc - (int)C) / 2;
    long long nc = (long long)(in->dims[0] * C);
    if (net->aes == 2)
        SA_MOVE(uint16_t, to_out);
    else
        SA_MOVE(float, to_out);
}

static void sa_forward(feed_net *net, feed_layer *L, int train) {
    feed_value *out = &net->v[L->out];
    memset(out->data, 0, out->bytes);
    sa_move(net, L, net->v[L->in[0]].data, out->data, 1);
}

static void sa_backward(feed_net *net, feed_layer *L) {
    feed_value *in = &net->v[L->in[0]], *out = &net->v[L->out];
    if (!in->need_diff) return;
    int acc;
    float *t = net_diff_target_ptr(net, L->in[0], &acc);
    memset(t, 0, in->bytes);
    sa_move(net, L, t, out->diff, 0);
    net_diff_done(net, L->in[0], acc);
}

static void sa_destroy(feed_layer *L) {
    free(L->priv);
    L->priv = NULL;
}

const feed_layer_ops feed_shortcut_a_ops = {
    .type = "shortcutA", .plan = sa_plan, .forward = sa_forward, .backward = sa_backward, .destroy = sa_destroy,
};

int feed_nb_shortcut_a(feed_nb *nb, int in, int out_channels, int stride) {
    feed_net *net = (feed_net *)nb;
    FEED_CHECK(in >= 0 && in < net->nv && net->v[in].ndims == 4, "shortcut takes (B,C,H,W)", "input %d", in);
    feed_value *x = &net->v[in];
    FEED_CHECK(out_channels >= x->dims[1] && stride >= 1, "option A only pads channels",
               "shortcut A %lld -> %d channels", (long long)x->dims[1], out_channels);
    dnnl_dim_t od[4] = {x->dims[0], out_channels, (x->dims[2] + stride - 1) / stride,
                        (x->dims[3] + stride - 1) / stride};
    int ins[1] = {in};
    feed_layer *L = net_add_layer(net, &feed_shortcut_a_ops, NULL, 1, ins, 4, od);
    L->oc = out_channels, L->stride = stride;
    return L->out;
}
