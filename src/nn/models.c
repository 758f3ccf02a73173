/* models.c - model names, validation and dispatch to the per-architecture builders. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/models.h"

static void defaults(feed_model_spec *s, int image_size) {
    if (!s->in_channels) s->in_channels = 3;
    if (!s->height) s->height = image_size;
    if (!s->width) s->width = image_size;
    if (!s->num_classes) s->num_classes = 10;
    if (!s->batch) s->batch = 128;
}

int feed_model_parse(const char *name, feed_model_spec *s) {
    char lower[64];
    size_t n = strlen(name);
    if (n >= sizeof lower) return -1;
    for (size_t i = 0; i <= n; i++) lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    int a, b, c, d;
    char tail[16];
    if (sscanf(lower, "wrn-%d-%d%15s", &a, &b, tail) == 2) {
        s->arch = FEED_ARCH_WRN, s->depth = a, s->widen = b;
        defaults(s, 32);
        return 0;
    }
    if (sscanf(lower, "resnext%d-%dx%dd-w%d%15s", &a, &b, &c, &d, tail) == 4 ||
        (sscanf(lower, "resnext%d-%dx%dd%15s", &a, &b, &c, tail) == 3 && (d = 4))) {
        s->arch = FEED_ARCH_RESNEXT, s->depth = a, s->cardinality = b, s->base_width = c, s->widen = d;
        defaults(s, 32);
        return 0;
    }
    if (strcmp(lower, "resnet18") == 0 || strcmp(lower, "resnet34") == 0) {
        s->arch = FEED_ARCH_RESNET_IMAGENET, s->depth = atoi(lower + 6);
        defaults(s, 224);
        return 0;
    }
    char opt = 0;
    if (sscanf(lower, "resnet%d-%c%15s", &a, &opt, tail) == 2 || sscanf(lower, "resnet%d%15s", &a, tail) == 1) {
        if (opt == 0) opt = 'b';
        if (opt != 'a' && opt != 'b') return -1;
        s->arch = FEED_ARCH_RESNET_CIFAR, s->depth = a, s->shortcut = (char)(opt - 32);
        defaults(s, 32);
        return 0;
    }
    return -1;
}

const char *feed_model_name(const feed_model_spec *s, char *buf, size_t cap) {
    switch (s->arch) {
    case FEED_ARCH_RESNET_CIFAR: snprintf(buf, cap, "resnet%d-%c", s->depth, s->shortcut == 'A' ? 'a' : 'b'); break;
    case FEED_ARCH_WRN: snprintf(buf, cap, "wrn-%d-%d", s->depth, s->widen); break;
    case FEED_ARCH_RESNEXT:
        if (s->widen == 4)
            snprintf(buf, cap, "resnext%d-%dx%dd", s->depth, s->cardinality, s->base_width);
        else
            snprintf(buf, cap, "resnext%d-%dx%dd-w%d", s->depth, s->cardinality, s->base_width, s->widen);
        break;
    case FEED_ARCH_RESNET_IMAGENET: snprintf(buf, cap, "resnet%d", s->depth); break;
    default: snprintf(buf, cap, "unknown"); break;
    }
    return buf;
}

/* The first thing wrong with spec (message to msg, hint returned), or NULL. */
const char *feed_model_problem(const feed_model_spec *s, char *msg, size_t cap) {
#define PROBLEM(cond, hint, ...)                                                                               \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            snprintf(msg, cap, __VA_ARGS__);                                                                   \
            return hint;                                                                                       \
        }                                                                                                      \
    } while (0)
    PROBLEM(s->in_channels >= 1 && s->height >= 1 && s->width >= 1 && s->batch >= 1 && s->num_classes >= 1,
            "set in_channels, height, width, num_classes and batch", "bad model shape %d x %dx%d, %d classes, batch %d",
            s->in_channels, s->height, s->width, s->num_classes, s->batch);
    switch (s->arch) {
    case FEED_ARCH_RESNET_CIFAR:
        PROBLEM(s->depth >= 8 && (s->depth - 2) % 6 == 0, "CIFAR ResNet depth is 6n+2 (20, 32, 44, 56, 110)",
                "resnet depth %d", s->depth);
        PROBLEM(s->shortcut == 'A' || s->shortcut == 'B', "shortcut is A or B", "shortcut '%c'", s->shortcut);
        break;
    case FEED_ARCH_WRN:
        PROBLEM(s->depth >= 10 && (s->depth - 4) % 6 == 0, "WRN depth is 6n+4 (10, 16, 28, 40)", "wrn depth %d", s->depth);
        PROBLEM(s->widen >= 1, "widen factor >= 1", "wrn widen %d", s->widen);
        PROBLEM(s->dropout >= 0 && s->dropout < 1, "dropout in [0,1)", "wrn dropout %g", (double)s->dropout);
        break;
    case FEED_ARCH_RESNEXT:
        PROBLEM(s->depth >= 11 && (s->depth - 2) % 9 == 0, "ResNeXt depth is 9m+2 (11, 20, 29)", "resnext depth %d", s->depth);
        PROBLEM(s->cardinality >= 1 && s->base_width >= 1 && s->widen >= 1, "cardinality, base width, widen >= 1",
                "resnext %dx%dd w%d", s->cardinality, s->base_width, s->widen);
        break;
    case FEED_ARCH_RESNET_IMAGENET:
        PROBLEM(s->depth == 18 || s->depth == 34, "ImageNet ResNet depth is 18 or 34", "resnet depth %d", s->depth);
        break;
    default: PROBLEM(false, "use feed_model_parse or set spec.arch", "unknown architecture %d", (int)s->arch);
    }
#undef PROBLEM
    return NULL;
}

void feed_model_check(const feed_model_spec *s) {
    char msg[256];
    const char *hint = feed_model_problem(s, msg, sizeof msg);
    FEED_CHECK(!hint, hint, "%s", msg);
}

feed_nb *feed_model_graph(const feed_model_spec *s) {
    feed_model_check(s);
    switch (s->arch) {
    case FEED_ARCH_RESNET_CIFAR: return feed_resnet_cifar_graph(s);
    case FEED_ARCH_WRN: return feed_wrn_graph(s);
    case FEED_ARCH_RESNEXT: return feed_resnext_graph(s);
    case FEED_ARCH_RESNET_IMAGENET: return feed_resnet_imagenet_graph(s);
    }
    return NULL;
}

/* A bf16 model that runs more primitives in oneDNN's reference code than its fp32 build (no
 * bf16 kernel on this CPU for some layer) is built in fp32 instead, said once per process. */
feed_net *feed_model_build(const feed_model_spec *s, const feed_net_options *opt) {
    feed_net *net = feed_nb_build(feed_model_graph(s), opt);
    const char *first;
    int n = feed_net_reference_kernels(net, &first);
    if (n == 0 || feed_net_precision(net) != FEED_PRECISION_BF16) return net;
    feed_net_options o = *opt;
    o.precision = FEED_PRECISION_FP32;
    feed_net *fp32 = feed_nb_build(feed_model_graph(s), &o);
    int n32 = feed_net_reference_kernels(fp32, NULL);
    static int said;
    if (!said++) {
        char name[64];
        fprintf(stderr, "feed_mpi: note: %s: oneDNN has no bf16 kernel on this CPU for %d of its primitives (first: "
                        "%s): %s\n", feed_model_name(s, name, sizeof name), n, first,
                n32 < n ? "computing it in fp32" : "they run oneDNN's reference code in fp32 too; keeping bf16");
    }
    if (n32 < n) {
        feed_net_free(net);
        return fp32;
    }
    feed_net_free(fp32);
    return net;
}
