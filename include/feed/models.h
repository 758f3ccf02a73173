/* models.h - the model zoo, built on the net builder (net.h) with PyTorch state_dict names
 * (tools/torch_models.py is the reference definition).
 *
 *   feed_model_spec s;
 *   feed_model_parse("resnet56", &s);        arch, depth, shortcut ... from a name
 *   s.in_channels = 3; s.height = s.width = 32; s.num_classes = 100; s.batch = 128;
 *   feed_net *net = feed_model_build(&s, &(feed_net_options){.seed = 1});
 *
 * Every model taps "layer1".."layer3" (ResNet-18/34: .."layer4"; the raw output of each
 * stage's last block) and "final" (FEED's final feature map: after the last stage's ReLU,
 * before pooling; WRN: after bn_final + ReLU). The output is the logits (B, num_classes).
 */
#ifndef FEED_MODELS_H
#define FEED_MODELS_H

#include <stddef.h>

#include "feed/net.h"

typedef enum feed_arch {
    FEED_ARCH_RESNET_CIFAR = 1, /* ResNet-(6n+2), shortcut 'A' or 'B' */
    FEED_ARCH_WRN,              /* WRN-depth-widen, pre-activation, optional dropout */
    FEED_ARCH_RESNEXT,          /* ResNeXt-(9m+2) cardinality x base_width, widen */
    FEED_ARCH_RESNET_IMAGENET,  /* ResNet-18/34, ImageNet stem */
} feed_arch;

typedef struct feed_model_spec {
    feed_arch arch;
    int depth;
    char shortcut;    /* 'A' or 'B' (ResNet-CIFAR) */
    int widen;        /* WRN k; ResNeXt widen factor (4 in ResNeXt-29) */
    float dropout;    /* WRN */
    int cardinality;  /* ResNeXt c */
    int base_width;   /* ResNeXt d */
    int in_channels, height, width, num_classes, batch;
} feed_model_spec;

/* Fill arch fields from a name as in tools/torch_models.py build_model(): "resnet56",
 * "resnet56-b", "resnet20-a", "wrn-28-10", "resnext29-16x64d", "resnext11-2x4d-w1",
 * "resnet18", "resnet34". Leaves in_channels/height/width/num_classes/batch untouched
 * except when they are 0 (then 3, 32x32 (224 for ResNet-18/34), 10, 128).
 * Returns 0, or -1 for an unknown name. */
int feed_model_parse(const char *name, feed_model_spec *spec);
/* Canonical name, e.g. "resnet56-b", "wrn-28-10", "resnext29-16x64d". */
const char *feed_model_name(const feed_model_spec *spec, char *buf, size_t cap);
/* Validate (ends the job with a hint on bad values). */
void feed_model_check(const feed_model_spec *spec);
/* The same checks without ending the job: NULL if spec is valid, else a hint, with what is
 * wrong in msg[cap] (for messages that name the file the spec came from). */
const char *feed_model_problem(const feed_model_spec *spec, char *msg, size_t cap);

/* The graph of a model (not yet built): callers may add taps or layers before building. */
feed_nb *feed_model_graph(const feed_model_spec *spec);
feed_net *feed_model_build(const feed_model_spec *spec, const feed_net_options *opt);

/* The tail every model shares (src/nn/model_tail.c): feed_model_stage_tap() taps "layer<stage>"
 * on a residual stage's output; feed_model_head() taps "final" on the final map (B, C, H, W),
 * pools it globally, adds the classifier "fc" and makes the logits the output. */
void feed_model_stage_tap(feed_nb *nb, int stage, int x);
void feed_model_head(feed_nb *nb, int final_map, int num_classes);
/* Number of "layer<s>" taps of a model's net: 3 for the CIFAR models, 4 for ResNet-18/34. */
int feed_model_num_stages(feed_net *net);

/* Per-architecture graph builders (src/nn/<arch>.c); they end with the shared tail above. */
feed_nb *feed_resnet_cifar_graph(const feed_model_spec *spec);
feed_nb *feed_wrn_graph(const feed_model_spec *spec);
feed_nb *feed_resnext_graph(const feed_model_spec *spec);
feed_nb *feed_resnet_imagenet_graph(const feed_model_spec *spec);

#endif
