/* wrn.c - Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016), pre-activation, optional dropout.
 *
 * conv1 3x3 (->16); layer1..3 of n=(d-4)/6 blocks with 16k/32k/64k channels, strides 1/2/2;
 * bn_final + ReLU ("final" tap); global average pool; fc.
 * Block: o = relu(bn1(x)); y = conv2(dropout(relu(bn2(conv1(o))))); out = y + (x or shortcut(o)),
 * shortcut = 1x1 conv (no BN) where the shape changes.
 */
#include <stdio.h>

#include "feed/models.h"

feed_nb *feed_wrn_graph(const feed_model_spec *s) {
    int n = (s->depth - 4) / 6, k = s->widen;
    feed_nb *nb = feed_nb_create(s->batch, s->in_channels, s->height, s->width);
    int x = feed_nb_conv(nb, "conv1", 0, 16, 3, 1, 1, 1, 0);
    int cin = 16;
    for (int st = 0; st < 3; st++) {
        int cout = (16 << st) * k;
        for (int i = 0; i < n; i++) {
            int stride = (i == 0 && st > 0) ? 2 : 1;
            char p[64], nm[96];
            snprintf(p, sizeof p, "layer%d.%d", st + 1, i);
            snprintf(nm, sizeof nm, "%s.bn1", p);
            int o = feed_nb_bn(nb, nm, x, 1);
            snprintf(nm, sizeof nm, "%s.conv1", p);
            int y = feed_nb_conv(nb, nm, o, cout, 3, stride, 1, 1, 0);
            snprintf(nm, sizeof nm, "%s.bn2", p);
            y = feed_nb_bn(nb, nm, y, 1);
            if (s->dropout > 0) y = feed_nb_dropout(nb, y, s->dropout);
            snprintf(nm, sizeof nm, "%s.conv2", p);
            y = feed_nb_conv(nb, nm, y, cout, 3, 1, 1, 1, 0);
            int sc = x;
            if (stride != 1 || cin != cout) {
                snprintf(nm, sizeof nm, "%s.shortcut", p);
                sc = feed_nb_conv(nb, nm, o, cout, 1, stride, 0, 1, 0);
            }
            x = feed_nb_add(nb, y, sc, 0);
            cin = cout;
        }
        feed_model_stage_tap(nb, st + 1, x);
    }
    x = feed_nb_bn(nb, "bn_final", x, 1);
    feed_model_head(nb, x, s->num_classes);
    return nb;
}
