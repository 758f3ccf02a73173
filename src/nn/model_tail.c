/* model_tail.c - what every model of the zoo shares after its body: a tap on each residual
 * stage's output, and the head (the "final" tap, global average pooling, the classifier).
 * Every distillation method reads these taps, so they are named in one place. */
#include <stdio.h>

#include "feed/models.h"

void feed_model_stage_tap(feed_nb *nb, int stage, int x) {
    char tap[16];
    snprintf(tap, sizeof tap, "layer%d", stage);
    feed_nb_tap(nb, tap, x);
}

void feed_model_head(feed_nb *nb, int final_map, int num_classes) {
    feed_nb_tap(nb, "final", final_map);                    /* (B, C, H, W) */
    int pooled = feed_nb_avgpool_global(nb, final_map);     /* (B, C, 1, 1) */
    feed_nb_output(nb, feed_nb_linear(nb, "fc", pooled, num_classes)); /* (B, num_classes) */
}

int feed_model_num_stages(feed_net *net) {
    int stages = 0;
    for (int t = 0; t < feed_net_num_taps(net); t++) {
        int s;
        char end;
        if (sscanf(feed_net_tap_name(net, t), "layer%d%c", &s, &end) == 1 && s > stages) stages = s;
    }
    return stages;
}
