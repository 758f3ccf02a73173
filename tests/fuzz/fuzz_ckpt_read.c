/* fuzz_ckpt_read.c - eval's and resume's checkpoint reads, with cached networks
 * (fuzz_ckpt_read.h).
 *
 * feed_model_load builds a network for every call; a fuzzer cannot afford that (oneDNN
 * plans every layer), so the network of each small model is built once and reused: reading
 * a checkpoint into it is what is being tested, not building it. The tensor loop of
 * feed_net_load runs first with buffers kept here - feed_net_load's own buffer would be
 * stranded by every refused tensor - and then feed_net_load itself, which must then succeed.
 */
#include "fuzz_ckpt_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/checkpoint.h"
#include "feed/train.h"

#define MAX_NETS 16

static struct {
    char name[64];
    feed_net *net; /* NULL: too large */
} g_nets[MAX_NETS];
static int g_num_nets;

static feed_ckpt *g_ck; /* open while fuzz_ckpt_read runs */

/* Models of at most ~300k parameters: CIFAR ResNets to depth 20, WRN-10/16 up to width 2,
 * the smallest ResNeXt. ResNet-18/34 are not built (11-21 M parameters). */
static bool small_model(const feed_model_spec *s) {
    switch (s->arch) {
    case FEED_ARCH_RESNET_CIFAR: return s->depth <= 20;
    case FEED_ARCH_WRN: return s->depth <= 16 && s->widen <= 2;
    case FEED_ARCH_RESNEXT: return s->depth == 11 && s->cardinality * s->base_width <= 8 && s->widen == 1;
    default: return false;
    }
}

static feed_model_spec spec_of(const char *name) {
    feed_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_channels = FUZZ_CKPT_CHANNELS;
    s.height = s.width = FUZZ_CKPT_SIZE;
    s.num_classes = FUZZ_CKPT_CLASSES;
    s.batch = 1;
    if (feed_model_parse(name, &s) != 0) s.arch = 0;
    return s;
}

feed_net *fuzz_ckpt_net(const char *name) {
    for (int i = 0; i < g_num_nets; i++)
        if (strcmp(g_nets[i].name, name) == 0) return g_nets[i].net;
    feed_model_spec s = spec_of(name);
    if (g_num_nets == MAX_NETS || !s.arch || !small_model(&s)) return NULL;
    snprintf(g_nets[g_num_nets].name, sizeof g_nets[0].name, "%s", name);
    g_nets[g_num_nets].net = feed_model_create(&s, 1, false);
    return g_nets[g_num_nets++].net;
}

static feed_ckpt_shape entry_shape(const feed_param_info *e) { /* as net_checkpoint.c */
    feed_ckpt_shape s = {e->dtype == FEED_I64 ? FEED_CKPT_I64 : FEED_CKPT_F32, e->ndims, {0}};
    for (int d = 0; d < e->ndims; d++) s.dims[d] = e->shape[d];
    return s;
}

/* feed_net_load's loop (params_only: feed_net_load_flat's), reading into a kept buffer. */
static void read_entries(const feed_ckpt *ck, feed_net *net, const char *group, bool params_only) {
    static void *buf;
    static size_t cap;
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (params_only && e->kind != FEED_PARAM) continue;
        if (e->numel * 8 > cap) {
            free(buf);
            cap = e->numel * 8;
            buf = feed_xmalloc(cap, "fuzz tensor buffer");
        }
        feed_ckpt_read(ck, group, e->name, entry_shape(e), buf);
    }
}

void fuzz_ckpt_read(const char *path) {
    /* feed_model_load (eval) */
    g_ck = feed_ckpt_open(path);
    char arch[64];
    snprintf(arch, sizeof arch, "%s", feed_ckpt_get_meta(g_ck)->arch);
    feed_ckpt_require_model(g_ck, NULL, FUZZ_CKPT_CLASSES, FUZZ_CKPT_CHANNELS);
    feed_model_spec spec = feed_model_spec_from_checkpoint(g_ck, 1, FUZZ_CKPT_SIZE, FUZZ_CKPT_SIZE);
    if (spec.height != FUZZ_CKPT_SIZE || spec.width != FUZZ_CKPT_SIZE)
        FEED_INPUT_ERROR("use a data set of the images the model was trained on",
                         "model %s was trained on %dx%d images, the data set has %dx%d", path, spec.height,
                         spec.width, FUZZ_CKPT_SIZE, FUZZ_CKPT_SIZE);
    char name[64];
    feed_net *net = fuzz_ckpt_net(feed_model_name(&spec, name, sizeof name));
    if (net) {
        read_entries(g_ck, net, "model", false);
        feed_net_load(g_ck, net, "model");
        /* the trainer's restore (resume) */
        feed_ckpt_require_model(g_ck, arch, FUZZ_CKPT_CLASSES, FUZZ_CKPT_CHANNELS);
        (void)feed_ckpt_read_i64(g_ck, "train", "seed");
        read_entries(g_ck, net, "optim/momentum", true);
        size_t n;
        feed_net_params(net, &n);
        static float *momentum;
        static size_t momentum_n;
        if (n > momentum_n) {
            free(momentum);
            momentum = feed_xmalloc(n * sizeof *momentum, "fuzz momentum");
            momentum_n = n;
        }
        feed_net_load_flat(g_ck, net, momentum, "optim/momentum");
        const char *scalars[] = {"epoch", "step_in_epoch", "global_step", "sgd_steps"};
        for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) (void)feed_ckpt_read_i64(g_ck, "train", scalars[i]);
        (void)feed_ckpt_read_f64(g_ck, "train", "best_error");
    }
    feed_ckpt_close(g_ck);
    g_ck = NULL;
}

void fuzz_ckpt_read_cleanup(void) {
    /* its HDF5 file is closed already (fuzz_catch); closing the id again only fails */
    feed_ckpt_close(g_ck);
    g_ck = NULL;
}
