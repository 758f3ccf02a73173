/* paraphraser.c - training, saving and reusing FT's paraphrasers (paraphraser.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/distill_modules.h"
#include "feed/loss_l1.h"
#include "feed/metrics.h"
#include "feed/paraphraser.h"
#include "feed/train.h"

char *feed_paraphraser_path(const feed_config *cfg, int n) {
    if (cfg->ft.paraphrasers.n > 0) return feed_xstrdup(cfg->ft.paraphrasers.v[n]);
    return feed_xstrdup(feed_fmt("%s/paraphraser_%d.h5", cfg->run.dir, n));
}

/* What a paraphraser file must agree on to be reused for this teacher. */
typedef struct {
    char teacher_sha256[65];
    int64_t teacher_channels, factor_channels, height, width, epochs;
    double rate;
} paraphraser_key;

static paraphraser_key key_of(const feed_config *cfg, int n, const int dims[4], int factor_c) {
    paraphraser_key k = {.teacher_channels = dims[1], .factor_channels = factor_c, .height = dims[2],
                         .width = dims[3], .epochs = cfg->ft.paraphraser_epochs, .rate = cfg->ft.rate};
    feed_sha256_file(cfg->distill.teachers.v[n], k.teacher_sha256);
    return k;
}

/* Exit 2 naming the first attribute of `path` that differs from `want`. */
static void require_same_key(const feed_ckpt *ck, const paraphraser_key *want, const char *teacher) {
    const char *path = feed_ckpt_path(ck);
    const char *hint = "delete the file to train a new paraphraser, or name the right one in ft.paraphrasers";
    char *sha = feed_ckpt_attr_str(ck, NULL, "teacher_sha256");
    if (!sha || strcmp(sha, want->teacher_sha256) != 0)
        FEED_INPUT_ERROR(hint, "paraphraser %s was trained for another teacher than %s (teacher_sha256 differs)",
                         path, teacher);
    free(sha);
    const struct {
        const char *name;
        int64_t want;
    } ints[] = {{"teacher_channels", want->teacher_channels}, {"factor_channels", want->factor_channels},
                {"map_height", want->height},                 {"map_width", want->width},
                {"paraphraser_epochs", want->epochs}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = -1;
        if (!feed_ckpt_attr_i64(ck, NULL, ints[i].name, &v) || v != ints[i].want)
            FEED_INPUT_ERROR(hint, "paraphraser %s has %s = %lld, this job needs %lld", path, ints[i].name,
                             (long long)v, (long long)ints[i].want);
    }
    double rate = NAN;
    if (!feed_ckpt_attr_f64(ck, NULL, "rate", &rate) || rate != want->rate)
        FEED_INPUT_ERROR(hint, "paraphraser %s has rate %g, this job ft.rate = %g", path, rate, want->rate);
}

static void save(const char *path, const feed_config *cfg, const feed_dataset *ds, int n, feed_net *para,
                 const paraphraser_key *k, const double *recon, int64_t steps) {
    feed_ckpt_meta meta = {.arch = "ft-paraphraser", .dataset = ds->name, .num_classes = ds->num_classes,
                           .in_channels = k->teacher_channels, .epoch = k->epochs, .step = steps,
                           .seed = cfg->run.seed, .config_ini = cfg->ini_text};
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    feed_ckpt_put_attr_str(w, NULL, "teacher", cfg->distill.teachers.v[n]);
    feed_ckpt_put_attr_str(w, NULL, "teacher_sha256", k->teacher_sha256);
    feed_ckpt_put_attr_i64(w, NULL, "teacher_channels", k->teacher_channels);
    feed_ckpt_put_attr_i64(w, NULL, "factor_channels", k->factor_channels);
    feed_ckpt_put_attr_i64(w, NULL, "map_height", k->height);
    feed_ckpt_put_attr_i64(w, NULL, "map_width", k->width);
    feed_ckpt_put_attr_i64(w, NULL, "paraphraser_epochs", k->epochs);
    feed_ckpt_put_attr_f64(w, NULL, "rate", k->rate);
    feed_net_save(w, para, "model");
    feed_ckpt_put(w, "train", "recon_loss", (feed_ckpt_shape){FEED_CKPT_F64, 1, {k->epochs}}, recon);
    feed_ckpt_commit(w);
}

double feed_paraphraser_step(feed_net *para, feed_sgd *sgd, const float *xt, float *grad, double lr) {
    int d[4];
    feed_net_output_shape(para, d);
    feed_net_forward(para, xt, 1);
    double loss = feed_loss_l1_mean(feed_net_output(para), xt, (size_t)d[0] * d[1] * d[2] * d[3], grad);
    feed_net_backward(para, grad);
    feed_sgd_step(sgd, lr);
    return loss;
}

/* ft.paraphraser_epochs epochs of L1 reconstruction of the teacher's final map. */
static feed_net *train(const feed_config *cfg, int n, feed_net *teacher, const feed_dataset *ds, int batch,
                       const int dims[4], int factor_c, double *recon, int64_t *steps_out) {
    uint64_t seed = (uint64_t)cfg->run.seed * 1000003u + 7919u * (uint64_t)(n + 1);
    feed_net *para = feed_paraphraser_build(batch, dims[1], factor_c, dims[2], dims[3], seed, 0, 0);
    feed_sgd sgd;
    feed_sgd_init(&sgd, (feed_sgd_config){.momentum = 0.9f, .weight_decay = (float)cfg->train.weight_decay});
    float *momentum = feed_sgd_add_net(&sgd, para);
    feed_loader_config lc = feed_train_loader_config(cfg, batch, (uint64_t)cfg->run.seed);
    feed_loader *ld = feed_loader_create(ds, &lc);
    size_t map = (size_t)batch * dims[1] * dims[2] * dims[3];
    float *x = feed_xaligned(sizeof(float) * (size_t)batch * ds->channels * ds->height * ds->width, "input batch");
    int32_t *y = feed_xmalloc(sizeof(int32_t) * (size_t)batch, "labels");
    float *grad = feed_xaligned(map * sizeof(float), "reconstruction gradient");
    int64_t steps = feed_loader_steps_per_epoch(ld);
    for (int e = 0; e < cfg->ft.paraphraser_epochs; e++) {
        double t0 = feed_now_seconds(), sum = 0;
        for (int64_t s = 0; s < steps; s++) {
            feed_loader_batch(ld, e, s, x, y);
            feed_net_forward(teacher, x, 0);
            const float *xt = feed_net_tap(teacher, "final", NULL); /* (B, C_t, H, W) */
            sum += feed_paraphraser_step(para, &sgd, xt, grad, cfg->ft.paraphraser_lr);
        }
        recon[e] = sum / (double)steps;
        printf("teacher %d paraphraser: epoch %d/%d  reconstruction L1 %.5g  %.0f img/s\n", n + 1, e + 1,
               cfg->ft.paraphraser_epochs, recon[e], (double)(steps * batch) / (feed_now_seconds() - t0));
        fflush(stdout);
    }
    *steps_out = steps * cfg->ft.paraphraser_epochs;
    free(x), free(y), free(grad), free(momentum);
    feed_loader_destroy(ld);
    feed_sgd_free(&sgd);
    return para;
}

/* The key a paraphraser of this teacher must have; dims gets the teacher's final map. */
static paraphraser_key expected_key(const feed_config *cfg, int n, feed_net *teacher, int dims[4]) {
    FEED_CHECK(feed_net_tap(teacher, "final", dims), "this is a bug", "teacher has no 'final' tap");
    int factor_c = (int)lround(cfg->ft.rate * dims[1]);
    return key_of(cfg, n, dims, factor_c < 1 ? 1 : factor_c);
}

int feed_paraphraser_check(const feed_config *cfg, int n, feed_net *teacher) {
    int dims[4];
    paraphraser_key key = expected_key(cfg, n, teacher, dims);
    char *path = feed_paraphraser_path(cfg, n);
    int exists = access(path, F_OK) == 0;
    if (exists) {
        feed_ckpt *ck = feed_ckpt_open(path);
        require_same_key(ck, &key, cfg->distill.teachers.v[n]);
        feed_ckpt_close(ck);
    }
    free(path);
    return exists;
}

feed_net *feed_paraphraser_encoder(const feed_config *cfg, int n, feed_net *teacher, const feed_dataset *ds,
                                   int batch) {
    int dims[4]; /* teacher's final map (B, C_t, H, W) */
    paraphraser_key key = expected_key(cfg, n, teacher, dims);
    int factor_c = (int)key.factor_channels;
    char *path = feed_paraphraser_path(cfg, n);
    /* the frozen encoder (conv0..2), inference-only: its weights may be in a write-only layout
     * (Winograd), so they are set from the file or the trained paraphraser, never read back */
    feed_net *encoder = feed_paraphraser_build(batch, dims[1], factor_c, dims[2], dims[3], 0, 1, 1);
    if (access(path, F_OK) == 0) {
        feed_ckpt *ck = feed_ckpt_open(path);
        require_same_key(ck, &key, cfg->distill.teachers.v[n]);
        feed_net_load(ck, encoder, "model");
        feed_ckpt_close(ck);
        printf("teacher %d paraphraser: reusing %s\n", n + 1, path);
    } else {
        double *recon = feed_xcalloc((size_t)cfg->ft.paraphraser_epochs, sizeof(double), "reconstruction losses");
        int64_t steps = 0;
        feed_net *para = train(cfg, n, teacher, ds, batch, dims, factor_c, recon, &steps);
        feed_ckpt_dir_create(cfg->run.dir);
        save(path, cfg, ds, n, para, &key, recon, steps);
        feed_net_copy_params(encoder, para);
        feed_net_free(para);
        free(recon);
        printf("teacher %d paraphraser: saved %s\n", n + 1, path);
    }
    fflush(stdout);
    free(path);
    return encoder;
}
