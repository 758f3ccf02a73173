/* model_factory.c - [model] keys or checkpoint attributes -> a model spec -> a network. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
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
    feed_net_options opt = {.seed = seed, .inference_only = inference_only};
    return feed_model_build(spec, &opt);
}

void feed_model_put_attrs(feed_ckpt_writer *w, const feed_model_spec *spec) {
    char name[64];
    feed_ckpt_put_attr_str(w, NULL, "model_name", feed_model_name(spec, name, sizeof name));
    feed_ckpt_put_attr_f64(w, NULL, "model_dropout", spec->dropout);
    feed_ckpt_put_attr_i64(w, NULL, "input_height", spec->height);
    feed_ckpt_put_attr_i64(w, NULL, "input_width", spec->width);
}

feed_model_spec feed_model_spec_from_checkpoint(const feed_ckpt *ck, int batch) {
    const feed_ckpt_meta *meta = feed_ckpt_get_meta(ck);
    char *name = feed_ckpt_attr_str(ck, NULL, "model_name");
    int64_t h = 0, w = 0;
    double dropout = 0;
    if (!name || !feed_ckpt_attr_i64(ck, NULL, "input_height", &h) ||
        !feed_ckpt_attr_i64(ck, NULL, "input_width", &w))
        FEED_INPUT_ERROR("checkpoints written by feed_mpi's training modes carry model_name, "
                         "input_height and input_width",
                         "%s does not say which model it holds", feed_ckpt_path(ck));
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
        FEED_INPUT_ERROR("was it written by a newer feed_mpi?", "%s: unknown model_name '%s'",
                         feed_ckpt_path(ck), name);
    if (meta->arch && strcmp(meta->arch, name) != 0)
        FEED_INPUT_ERROR("the two attributes name the same model: the file is damaged or was edited",
                         "%s: arch '%s' and model_name '%s' disagree", feed_ckpt_path(ck), meta->arch, name);
    s.dropout = (float)dropout;
    free(name);
    feed_model_check(&s);
    return s;
}

feed_net *feed_model_load(const char *path, const char *role, const feed_dataset *ds, const char *data_path,
                          int batch, char *arch, size_t arch_cap) {
    feed_ckpt *ck = feed_ckpt_open(path);
    if (arch) snprintf(arch, arch_cap, "%s", feed_ckpt_get_meta(ck)->arch);
    feed_ckpt_require_model(ck, NULL, ds->num_classes, ds->channels);
    feed_model_spec spec = feed_model_spec_from_checkpoint(ck, batch);
    if (spec.height != ds->height || spec.width != ds->width)
        FEED_INPUT_ERROR(feed_fmt("use a data set of the images the %s was trained on", role),
                         "%s %s was trained on %dx%d images, %s has %dx%d", role, path, spec.height, spec.width,
                         data_path, ds->height, ds->width);
    feed_net *net = feed_model_create(&spec, 0, true); /* eval mode, BN folded into the convs */
    feed_net_load(ck, net, "model");
    feed_ckpt_close(ck);
    return net;
}
