/* resnet_cifar.c - CIFAR ResNet-(6n+2) (He et al. 2016), shortcut option A or B.
 *
 * conv1 3x3 (->16) + bn1 + ReLU; layer1..3 of n BasicBlocks with 16/32/64 channels, stride 2
 * in the first block of layer2/3; global average pool; fc.
 * Block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); shortcut where the shape
 * changes: option B 1x1 conv (stride) + BN ("shortcut.0", "shortcut.1"), option A subsample +
 * zero-padded channels (no parameters).
 */
#include <stdio.h>

#include "feed/models.h"

/* Shared with resnet_imagenet.c: a BasicBlock whose projection is named `proj` ("shortcut" or
 * "downsample"); proj == NULL means option A. */
int feed_basic_block(feed_nb *nb, const char *prefix, int x, int cin, int cout, int stride, const char *proj) {
    char n[128];
    snprintf(n, sizeof n, "%s.conv1", prefix);
    int y = feed_nb_conv(nb, n, x, cout, 3, stride, 1, 1, 0);
    snprintf(n, sizeof n, "%s.bn1", prefix);
    y = feed_nb_bn(nb, n, y, 1);
    snprintf(n, sizeof n, "%s.conv2", prefix);
    y = feed_nb_conv(nb, n, y, cout, 3, 1, 1, 1, 0);
    snprintf(n, sizeof n, "%s.bn2", prefix);
    y = feed_nb_bn(nb, n, y, 0);
    int sc = x;
    if (stride != 1 || cin != cout) {
        if (!proj) {
            sc = feed_nb_shortcut_a(nb, x, cout, stride);
        } else {
            snprintf(n, sizeof n, "%s.%s.0", prefix, proj);
            sc = feed_nb_conv(nb, n, x, cout, 1, stride, 0, 1, 0);
            snprintf(n, sizeof n, "%s.%s.1", prefix, proj);
            sc = feed_nb_bn(nb, n, sc, 0);
        }
    }
    return feed_nb_add(nb, y, sc, 1);
}

feed_nb *feed_resnet_cifar_graph(const feed_model_spec *s) {
    int n = (s->depth - 2) / 6;
    feed_nb *nb = feed_nb_create(s->batch, s->in_channels, s->height, s->width);
    int x = feed_nb_conv(nb, "conv1", 0, 16, 3, 1, 1, 1, 0);
    x = feed_nb_bn(nb, "bn1", x, 1);
    int cin = 16;
    static const int widths[3] = {16, 32, 64}, strides[3] = {1, 2, 2};
    for (int st = 0; st < 3; st++) {
        for (int i = 0; i < n; i++) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "layer%d.%d", st + 1, i);
            x = feed_basic_block(nb, prefix, x, cin, widths[st], i == 0 ? strides[st] : 1,
                                 s->shortcut == 'A' ? NULL : "shortcut");
            cin = widths[st];
        }
        feed_model_stage_tap(nb, st + 1, x);
    }
    feed_model_head(nb, x, s->num_classes);
    return nb;
}
