/* resnet_imagenet.c - ResNet-18/34 (torchvision layout and names): conv1 7x7/2 + bn1 + ReLU +
 * maxpool 3x3/2; layer1..4 of BasicBlocks (64/128/256/512, projection "downsample.0/.1");
 * global average pool; fc. */
#include <stdio.h>

#include "feed/models.h"

int feed_basic_block(feed_nb *nb, const char *prefix, int x, int cin, int cout, int stride, const char *proj);

feed_nb *feed_resnet_imagenet_graph(const feed_model_spec *s) {
    static const int blocks18[4] = {2, 2, 2, 2}, blocks34[4] = {3, 4, 6, 3};
    const int *blocks = s->depth == 18 ? blocks18 : blocks34;
    feed_nb *nb = feed_nb_create(s->batch, s->in_channels, s->height, s->width);
    int x = feed_nb_conv(nb, "conv1", 0, 64, 7, 2, 3, 1, 0);
    x = feed_nb_bn(nb, "bn1", x, 1);
    x = feed_nb_maxpool(nb, x, 3, 2, 1);
    int cin = 64;
    for (int st = 0; st < 4; st++) {
        int cout = 64 << st;
        for (int i = 0; i < blocks[st]; i++) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "layer%d.%d", st + 1, i);
            x = feed_basic_block(nb, prefix, x, cin, cout, (i == 0 && st > 0) ? 2 : 1, "downsample");
            cin = cout;
        }
        feed_model_stage_tap(nb, st + 1, x);
    }
    feed_model_head(nb, x, s->num_classes);
    return nb;
}
