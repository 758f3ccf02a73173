/* model_factory.c - [model] keys or checkpoint attributes -> a model spec -> a network. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/engine.h"
#include "feed/train.h"

feed_model_spec feed_model_spec_from_config(const feed_config *cfg, const feed_dataset *ds, int batch) {
    const char *arch = feed_cfg_arch_names[cfg->model.arch];
    char name[64];
    if (strcmp(arch, "wrn") == 0)
        snprintf(name, sizeof name, "wrn-%d-%d", cfg->model.wrn_depth, cfg->model.wrn_width);
    else if (strcmp(arch, "resnext29") == 0)
        snprintf(name, sizeof name, "resnext29-%dx%dd", cfg->model.resnext_cardinality, cfg->model.resnext_width);
    else if (strcmp(arch, "resnet18") == 0 || strcmp(arch, "resnet34") == 0)
        snprintf(name, sizeof name, "%s", arch);
    else /* CIFAR ResNets */
        snprintf(name, sizeof name, "%s-%s", arch, cfg->model.shortcut ? "b" : "a");
    feed_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_channels = ds->channels;
    s.height = ds->height;
    s.width = ds->width;
    s.num_classes = ds->num_classes;
    s.batch = batch;
    FEED_CHECK(feed_model_parse(name, &s) == 0, "this is a bug: the schema lists an unknown arch",
               "cannot build model '%s'", name);
    s.dropout = (float)cfg->model.dropout;
    feed_model_check(&s);
    return s;
}

feed_net *feed_model_create(const feed_model_spec *spec, uint64_t seed, bool inference_only) {
    feed_net_options opt = {.seed = seed, .inference_only = inference_only,
                            .precision = feed_engine_precision(inference_only)};
    return feed_model_build(spec, &opt);
}

void feed_model_put_attrs(feed_ckpt_writer *w, const feed_model_spec *spec) {
    /* the model's name is the root attribute arch (feed_ckpt_meta), written by the caller */
    feed_ckpt_put_attr_f64(w, NULL, "model_dropout", spec->dropout);
    feed_ckpt_put_attr_i64(w, NULL, "input_height", spec->height);
    feed_ckpt_put_attr_i64(w, NULL, "input_width", spec->width);
}

/* The name of the model a checkpoint holds (malloc'ed): `arch`, in the spelling of [model]
 * arch + shortcut ("resnet20-b", "wrn-16-2"; "resnet20" means option B). Files written before
 * arch named the whole model carry model_name as well; the two must agree. */
static char *checkpoint_model_name(const feed_ckpt *ck) {
    const feed_ckpt_meta *meta = feed_ckpt_get_meta(ck);
    char *old = feed_ckpt_attr_str(ck, NULL, "model_name");
    if (!old) return feed_xstrdup(meta->arch);
    feed_model_spec a = {0}, b = {0};
    char ca[64], cb[64];
    if (feed_model_parse(meta->arch, &a) != 0 || feed_model_parse(old, &b) != 0 ||
        strcmp(feed_model_name(&a, ca, sizeof ca), feed_model_name(&b, cb, sizeof cb)) != 0)
        FEED_INPUT_ERROR("the two attributes name the same model: the file is damaged or was edited",
                         "%s: arch '%s' and model_name '%s' disagree", feed_ckpt_path(ck), meta->arch, old);
    return old;
}

/* A size attribute of the file, or `fallback` (the data set's) when the file has none. */
static int64_t input_side(const feed_ckpt *ck, const char *attr, int fallback) {
    int64_t v = 0;
    if (feed_ckpt_attr_i64(ck, NULL, attr, &v)) return v;
    if (fallback > 0) return fallback;
    FEED_INPUT_ERROR("give a data set (the input size is taken from its images), or add the attributes "
                     "input_height and input_width to the file",
                     "%s does not say which image size its model was trained on (%s)", feed_ckpt_path(ck), attr);
}

feed_model_spec feed_model_spec_from_checkpoint(const feed_ckpt *ck, int batch, int height, int width) {
    const feed_ckpt_meta *meta = feed_ckpt_get_meta(ck);
    char *name = checkpoint_model_name(ck);
    const int64_t h = input_side(ck, "input_height", height), w = input_side(ck, "input_width", width);
    double dropout = 0;
    if (h < 1 || w < 1 || h > FEED_MAX_SIDE || w > FEED_MAX_SIDE)
        FEED_INPUT_ERROR("the file is damaged or was edited: write it again",
                         "%s: input_height x input_width = %lld x %lld (each 1..%d)", feed_ckpt_path(ck),
                         (long long)h, (long long)w, FEED_MAX_SIDE);
    feed_ckpt_attr_f64(ck, NULL, "model_dropout", &dropout);
    /* the spec holds ints: 4294967324 must not pass as 28 */
    const struct { const char *name; int64_t value; } dims[] = {
        {"in_channels", meta->in_channels}, {"num_classes", meta->num_classes}, {"input_height", h}, {"input_width", w}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].value < 1 || dims[i].value > INT_MAX)
            FEED_INPUT_ERROR("the file is damaged or was not written by feed_mpi", "%s: %s is %lld",
                             feed_ckpt_path(ck), dims[i].name, (long long)dims[i].value);
    feed_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_channels = (int)meta->in_channels;
    s.num_classes = (int)meta->num_classes;
    s.height = (int)h;
    s.width = (int)w;
    s.batch = batch;
    if (feed_model_parse(name, &s) != 0)
        FEED_INPUT_ERROR("architectures: resnet<6n+2>[-a|-b], wrn-<depth>-<widen>, resnext<9m+2>-<c>x<d>d[-w<k>], "
                         "resnet18, resnet34",
                         "%s: unknown arch '%s'", feed_ckpt_path(ck), name);
    s.dropout = (float)dropout;
    char problem[256];
    const char *hint = feed_model_problem(&s, problem, sizeof problem);
    if (hint) FEED_INPUT_ERROR(hint, "%s: arch '%s': %s", feed_ckpt_path(ck), name, problem);
    free(name);
    return s;
}

feed_net *feed_model_load(const char *path, const char *role, const feed_dataset *ds, const char *data_path,
                          int batch, char *arch, size_t arch_cap) {
    feed_ckpt *ck = feed_ckpt_open(path);
    if (arch) snprintf(arch, arch_cap, "%s", feed_ckpt_get_meta(ck)->arch);
    feed_ckpt_require_model(ck, NULL, ds->num_classes, ds->channels);
    feed_model_spec spec = feed_model_spec_from_checkpoint(ck, batch, ds->height, ds->width);
    if (spec.height != ds->height || spec.width != ds->width)
        FEED_INPUT_ERROR(feed_fmt("use a data set of the images the %s was trained on", role),
                         "%s %s was trained on %dx%d images, %s has %dx%d", role, path, spec.height, spec.width,
                         data_path, ds->height, ds->width);
    feed_net *net = feed_model_create(&spec, 0, true); /* eval mode, BN folded into the convs */
    feed_net_load(ck, net, "model");
    feed_ckpt_close(ck);
    return net;
}
