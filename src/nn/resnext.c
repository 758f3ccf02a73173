/* resnext.c - CIFAR ResNeXt-(9m+2) (c x d) (Xie et al. 2017), widen factor w.
 *
 * conv1 3x3 (->64) + bn1 + ReLU; layer1..3 of m bottleneck blocks, stage s (0..2):
 * width D = c*d*2^s, output 64*w*2^s, stride 2 in the first block of layer2/3;
 * global average pool; fc. ResNeXt-29 16x64d: m=3, w=4 (final map 1024x8x8).
 * Block: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)), conv2 grouped
 * (c groups); shortcut = 1x1 conv + BN ("shortcut.0/.1") where the shape changes.
 */
#include <stdio.h>

#include "feed/models.h"

feed_nb *feed_resnext_graph(const feed_model_spec *s) {
    int m = (s->depth - 2) / 9, c = s->cardinality;
    feed_nb *nb = feed_nb_create(s->batch, s->in_channels, s->height, s->width);
    int x = feed_nb_conv(nb, "conv1", 0, 64, 3, 1, 1, 1, 0);
    x = feed_nb_bn(nb, "bn1", x, 1);
    int cin = 64;
    for (int st = 0; st < 3; st++) {
        int cout = (64 * s->widen) << st, D = (c * s->base_width) << st;
        for (int i = 0; i < m; i++) {
            int stride = (i == 0 && st > 0) ? 2 : 1;
            char p[64], nm[96];
            snprintf(p, sizeof p, "layer%d.%d", st + 1, i);
            snprintf(nm, sizeof nm, "%s.conv1", p);
            int y = feed_nb_conv(nb, nm, x, D, 1, 1, 0, 1, 0);
            snprintf(nm, sizeof nm, "%s.bn1", p);
            y = feed_nb_bn(nb, nm, y, 1);
            snprintf(nm, sizeof nm, "%s.conv2", p);
            y = feed_nb_conv(nb, nm, y, D, 3, stride, 1, c, 0);
            snprintf(nm, sizeof nm, "%s.bn2", p);
            y = feed_nb_bn(nb, nm, y, 1);
            snprintf(nm, sizeof nm, "%s.conv3", p);
            y = feed_nb_conv(nb, nm, y, cout, 1, 1, 0, 1, 0);
            snprintf(nm, sizeof nm, "%s.bn3", p);
            y = feed_nb_bn(nb, nm, y, 0);
            int sc = x;
            if (stride != 1 || cin != cout) {
                snprintf(nm, sizeof nm, "%s.shortcut.0", p);
                sc = feed_nb_conv(nb, nm, x, cout, 1, stride, 0, 1, 0);
                snprintf(nm, sizeof nm, "%s.shortcut.1", p);
                sc = feed_nb_bn(nb, nm, sc, 0);
            }
            x = feed_nb_add(nb, y, sc, 1);
            cin = cout;
        }
        feed_model_stage_tap(nb, st + 1, x);
    }
    feed_model_head(nb, x, s->num_classes);
    return nb;
}
