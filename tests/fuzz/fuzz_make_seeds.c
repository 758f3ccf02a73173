/* fuzz_make_seeds.c - the seed corpora of the HDF5 fuzz targets, made with the project's own
 * writers from real data (ctest fixture `fuzz_seeds`):
 *
 *   fuzz_make_seeds OUT FASHION_MNIST_DIR
 *
 *   OUT/dataset/fashion20.h5   20 training and 10 test images of the real Fashion-MNIST
 *                              (feed_read_mnist + feed_dataset_write, as feed_convert does)
 *   OUT/ckpt/resnet8.h5        a ResNet-8 (option A) checkpoint as the trainer writes it for
 *                              those images: model, momentum, /train scalars, model attributes
 *   OUT/ckpt/attrs_only.h5     the same root attributes without tensors (small, fast to mutate)
 *   OUT/cache/{fp32,bf16,fp16_compressed}.h5  feature caches of fuzz_cache_spec.h (fp32, bf16, fp16 compressed)
 *   OUT/dataset_gen, ckpt_gen:  inputs of the structure-aware targets that build well-formed
 *                              files (constant bytes: mostly "the right choice" everywhere)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/checkpoint.h"
#include "feed/dataset.h"
#include "feed/train.h"
#include "feed/feature_transport.h"
#include "fuzz_cache_spec.h"
#include "fuzz_ckpt_read.h"

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && access(path, F_OK) != 0) FEED_FAIL("", "cannot create %s", path);
}

static feed_dataset *cut(const feed_dataset *full, int64_t n_train, int64_t n_test) {
    feed_dataset *ds = feed_dataset_new(full->name, full->num_classes, full->height, full->width, full->channels);
    feed_dataset_set_class_names(ds, (const char *const *)full->class_names);
    int64_t n[FEED_NUM_SPLITS] = {n_train, n_test};
    for (int s = 0; s < FEED_NUM_SPLITS; s++) {
        feed_dataset_alloc_split(ds, (feed_split)s, n[s]);
        memcpy(ds->split[s].images, full->split[s].images, (size_t)(n[s] * feed_dataset_image_bytes(ds)));
        memcpy(ds->split[s].labels, full->split[s].labels, (size_t)n[s] * sizeof(int32_t));
    }
    for (int i = 0; i < full->num_sources; i++) { /* the files it came from, as feed_convert records them */
        ds->num_sources++;
        ds->source_files = feed_xrealloc(ds->source_files, sizeof(char *) * (size_t)ds->num_sources, "names");
        ds->source_sha256 = feed_xrealloc(ds->source_sha256, sizeof(char *) * (size_t)ds->num_sources, "sums");
        ds->source_files[i] = feed_xstrdup(full->source_files[i]);
        ds->source_sha256[i] = feed_xstrdup(full->source_sha256[i]);
    }
    feed_dataset_compute_stats(ds);
    return ds;
}

/* A checkpoint laid out as src/train/trainer.c's save() writes one. */
static void write_ckpt(const char *path, const char *model, bool tensors) {
    feed_net *net = fuzz_ckpt_net(model);
    feed_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.in_channels = FUZZ_CKPT_CHANNELS, spec.height = spec.width = FUZZ_CKPT_SIZE;
    spec.num_classes = FUZZ_CKPT_CLASSES, spec.batch = 1;
    if (!net || feed_model_parse(model, &spec) != 0) FEED_FAIL("", "no seed model %s", model);
    feed_ckpt_meta meta = {.arch = model, .dataset = "fashion-mnist", .num_classes = FUZZ_CKPT_CLASSES,
                           .in_channels = FUZZ_CKPT_CHANNELS, .epoch = 1, .step = 3, .seed = 1,
                           .config_ini = "[run]\nmode = scratch\n[data]\npath = fashion20.h5\n"};
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    feed_ckpt_put_attr_str(w, NULL, "config_overrides", "train.epochs=1\n");
    feed_model_put_attrs(w, &spec);
    if (tensors) {
        size_t n;
        float *params = feed_net_params(net, &n);
        float *momentum = feed_xmalloc(n * sizeof *momentum, "momentum");
        for (size_t i = 0; i < n; i++) momentum[i] = 0.1f * params[i];
        feed_net_save(w, net, "model");
        feed_net_save_flat(w, net, momentum, "optim/momentum");
        free(momentum);
    }
    feed_ckpt_put_i64(w, "train", "epoch", 1);
    feed_ckpt_put_i64(w, "train", "step_in_epoch", 0);
    feed_ckpt_put_i64(w, "train", "global_step", 3);
    feed_ckpt_put_i64(w, "train", "sgd_steps", 3);
    feed_ckpt_put_i64(w, "train", "seed", 1);
    feed_ckpt_put_f64(w, "train", "best_error", 0.5);
    feed_ckpt_put_f64(w, "train", "lr", 0.1);
    feed_ckpt_commit(w);
}

/* A feature cache of fuzz_cache_spec.h as the cache job writes it: every row of both views. */
static void write_cache(const char *path, int dtype, int compress) {
    feed_cache_spec spec = fuzz_cache_spec(dtype, compress);
    int64_t samples[6] = {0, 2, 3, 7, 11, 19}, rows_done = 0;
    unlink(path);
    feed_cache *c = feed_cache_create(path, &spec, samples, &rows_done);
    size_t elems = feed_teacher_payload_elems(&spec.layout);
    float *payload = feed_xmalloc(elems * sizeof(float), "payload");
    for (size_t i = 0; i < elems; i++) payload[i] = (float)i * 0.25f - 3.0f;
    int32_t augment[3 * FUZZ_CACHE_BATCH];
    for (int v = 0; v < spec.views; v++)
        for (int64_t r = 0; r < spec.n_samples; r += FUZZ_CACHE_BATCH) {
            int n = spec.n_samples - r < FUZZ_CACHE_BATCH ? (int)(spec.n_samples - r) : FUZZ_CACHE_BATCH;
            for (int j = 0; j < n; j++) augment[3 * j] = j % 5, augment[3 * j + 1] = v, augment[3 * j + 2] = j & 1;
            if (feed_cache_write_rows(c, v, r, n, payload, augment) != 0) FEED_FAIL("", "%s", feed_cache_error(c));
        }
    if (feed_cache_set_progress(c, spec.views * spec.n_samples) != 0) FEED_FAIL("", "%s", feed_cache_error(c));
    feed_cache_commit(c);
    free(payload);
}

static void write_bytes(const char *path, int byte, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) FEED_FAIL("", "cannot write %s", path);
    for (size_t i = 0; i < n; i++) fputc(byte, f);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_make_seeds OUT FASHION_MNIST_DIR\n");
        return 2;
    }
    const char *out = argv[1];
    make_dir(out);
    const char *sub[] = {"dataset", "ckpt", "dataset_gen", "ckpt_gen", "cache"};
    for (int i = 0; i < 5; i++) make_dir(feed_fmt("%s/%s", out, sub[i]));

    feed_dataset *full = feed_read_mnist(argv[2], true, false);
    feed_dataset *small = cut(full, 20, 10);
    feed_dataset_write(small, feed_fmt("%s/dataset/fashion20.h5", out), true, false);
    feed_dataset_close(small);
    feed_dataset_close(full);

    write_ckpt(feed_fmt("%s/ckpt/resnet8.h5", out), "resnet8-a", true);
    write_ckpt(feed_fmt("%s/ckpt/attrs_only.h5", out), "resnet8-a", false);

    write_cache(feed_fmt("%s/cache/fp32.h5", out), FEED_WIRE_FP32, 0);
    write_cache(feed_fmt("%s/cache/bf16.h5", out), FEED_WIRE_BF16, 0);
    write_cache(feed_fmt("%s/cache/fp16_compressed.h5", out), FEED_WIRE_FP16, 1);

    /* constant inputs: byte 7 picks "the right value" at nearly every choice of the builders */
    const int bytes[] = {7, 23, 71, 255};
    for (int i = 0; i < 4; i++) {
        write_bytes(feed_fmt("%s/dataset_gen/const%d", out, bytes[i]), bytes[i], 256);
        write_bytes(feed_fmt("%s/ckpt_gen/const%d", out, bytes[i]), bytes[i], 1024);
    }
    printf("fuzz_make_seeds: seeds in %s\n", out);
    return 0;
}
