/* probe.c - the reconstruction probe (analyze.h): an FT paraphraser trained to reconstruct a
 * frozen network's final map, checkpointed every epoch and resumed exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/analyze.h"
#include "feed/check.h"
#include "feed/checkpoint.h"
#include "feed/distill_modules.h"
#include "feed/feature_cache.h"
#include "feed/metrics.h"
#include "feed/paraphraser.h"
#include "feed/signals.h"
#include "feed/train.h"

/* What a probe checkpoint must agree on to be resumed: the same probe of the same network. */
typedef struct {
    char network_sha256[65], dataset_sha256[65];
    int64_t batch, subset_per_class, seed, map_c, map_h, map_w, factor_c;
    double rate, lr, weight_decay;
} probe_key;

typedef struct {
    const feed_probe_config *cfg;
    const feed_dataset *ds;
    const char *dir, *prefix, *network_path;
    probe_key key;
    feed_net *para;
    feed_sgd sgd;
    float *momentum;
    double *recon; /* cfg->epochs */
} probe;

static void save(const probe *p, const char *path, int64_t epochs_done, int64_t steps) {
    feed_ckpt_meta meta = {.arch = "probe-paraphraser", .dataset = p->ds->name, .num_classes = p->ds->num_classes,
                           .in_channels = p->key.map_c, .epoch = epochs_done, .step = steps,
                           .seed = p->key.seed, .config_ini = ""};
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    feed_ckpt_put_attr_str(w, NULL, "network", p->network_path);
    feed_ckpt_put_attr_str(w, NULL, "network_sha256", p->key.network_sha256);
    feed_ckpt_put_attr_str(w, NULL, "dataset_sha256", p->key.dataset_sha256);
    const struct { const char *name; int64_t v; } ints[] = {
        {"batch", p->key.batch}, {"subset_per_class", p->key.subset_per_class}, {"map_channels", p->key.map_c},
        {"map_height", p->key.map_h}, {"map_width", p->key.map_w}, {"factor_channels", p->key.factor_c}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) feed_ckpt_put_attr_i64(w, NULL, ints[i].name, ints[i].v);
    feed_ckpt_put_attr_f64(w, NULL, "rate", p->key.rate);
    feed_ckpt_put_attr_f64(w, NULL, "lr", p->key.lr);
    feed_ckpt_put_attr_f64(w, NULL, "weight_decay", p->key.weight_decay);
    feed_net_save(w, p->para, "model");
    feed_net_save_flat(w, p->para, p->momentum, "optim/momentum");
    if (epochs_done > 0)
        feed_ckpt_put(w, "train", "recon_loss", (feed_ckpt_shape){FEED_CKPT_F64, 1, {epochs_done}}, p->recon);
    feed_ckpt_commit(w);
}

/* Exit 2 naming the first key field of ck that differs from the probe's. */
static void require_same_probe(const feed_ckpt *ck, const probe_key *k) {
    const char *path = feed_ckpt_path(ck);
    const char *hint = "a probe folder holds one probe per network: use another --out, or delete the folder's "
                       "probe files to start over";
    const char *strs[][2] = {{"network_sha256", k->network_sha256}, {"dataset_sha256", k->dataset_sha256}};
    for (int i = 0; i < 2; i++) {
        char *v = feed_ckpt_attr_str(ck, NULL, strs[i][0]);
        bool same = v && strcmp(v, strs[i][1]) == 0;
        free(v);
        if (!same)
            FEED_INPUT_ERROR(hint, "probe %s was made for another %s (%s differs)", path,
                             i == 0 ? "network file" : "data set", strs[i][0]);
    }
    const struct { const char *name; int64_t v; } ints[] = {
        {"batch", k->batch}, {"subset_per_class", k->subset_per_class}, {"map_channels", k->map_c},
        {"map_height", k->map_h}, {"map_width", k->map_w}, {"factor_channels", k->factor_c}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = -1;
        if (!feed_ckpt_attr_i64(ck, NULL, ints[i].name, &v) || v != ints[i].v)
            FEED_INPUT_ERROR(hint, "probe %s has %s = %lld, this run %lld", path, ints[i].name, (long long)v,
                             (long long)ints[i].v);
    }
    const struct { const char *name; double v; } reals[] = {{"rate", k->rate}, {"lr", k->lr}, {"weight_decay", k->weight_decay}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        double v = NAN;
        if (!feed_ckpt_attr_f64(ck, NULL, reals[i].name, &v) || v != reals[i].v)
            FEED_INPUT_ERROR(hint, "probe %s has %s = %g, this run %g", path, reals[i].name, v, reals[i].v);
    }
    if (feed_ckpt_get_meta(ck)->seed != k->seed)
        FEED_INPUT_ERROR(hint, "probe %s has seed %lld, this run %lld", path, (long long)feed_ckpt_get_meta(ck)->seed,
                         (long long)k->seed);
}

/* Loads the newest probe checkpoint of dir/prefix, if any: returns the epochs it completed. */
static int resume(probe *p, int64_t *steps) {
    feed_ckpt_scan scan;
    feed_ckpt_find_newest(p->dir, p->prefix, &scan);
    feed_ckpt_scan_print(&scan, stdout);
    int done = 0;
    if (scan.path) {
        feed_ckpt *ck = feed_ckpt_open(scan.path);
        require_same_probe(ck, &p->key);
        const feed_ckpt_meta *m = feed_ckpt_get_meta(ck);
        if (m->epoch < 0 || m->epoch > p->cfg->epochs)
            FEED_INPUT_ERROR("a probe continues with the same or a larger --epochs", "probe %s has %lld epochs, this run asks for %d",
                             scan.path, (long long)m->epoch, p->cfg->epochs);
        feed_net_load(ck, p->para, "model");
        feed_net_load_flat(ck, p->para, p->momentum, "optim/momentum");
        if (m->epoch > 0)
            feed_ckpt_read(ck, "train", "recon_loss", (feed_ckpt_shape){FEED_CKPT_F64, 1, {m->epoch}}, p->recon);
        done = (int)m->epoch;
        *steps = m->step;
        feed_sgd_set_steps_taken(&p->sgd, (long)m->step);
        feed_ckpt_close(ck);
    }
    feed_ckpt_scan_free(&scan);
    return done;
}

/* Test hook: FEED_TEST_PROBE_DUMP=FILE writes the initial paraphraser, the first 3 steps'
 * inputs, maps and losses and the paraphraser after them there, for the comparison with
 * PyTorch (tests/analysis). Called before step 0 (map NULL) and after steps 0, 1, 2. */
static void dump_for_test(probe *p, int step, const float *x, size_t x_n, const float *map, size_t map_n, double loss) {
    static double losses[3];
    static float *xs, *maps;
    static feed_ckpt_writer *w;
    const char *path = getenv("FEED_TEST_PROBE_DUMP");
    if (!path || step >= 3) return;
    if (!map) {
        feed_ckpt_meta meta = {.arch = "probe-dump", .dataset = "", .config_ini = ""};
        w = feed_ckpt_begin(path, &meta);
        feed_net_save(w, p->para, "init");
        xs = feed_xmalloc(3 * x_n * sizeof(float), "dump");
        maps = feed_xmalloc(3 * map_n * sizeof(float), "dump");
        return;
    }
    memcpy(xs + (size_t)step * x_n, x, x_n * sizeof(float));
    memcpy(maps + (size_t)step * map_n, map, map_n * sizeof(float));
    losses[step] = loss;
    if (step == 2) {
        feed_net_save(w, p->para, "after3");
        feed_ckpt_put(w, NULL, "inputs", (feed_ckpt_shape){FEED_CKPT_F32, 2, {3, (int64_t)x_n}}, xs);
        feed_ckpt_put(w, NULL, "maps", (feed_ckpt_shape){FEED_CKPT_F32, 2, {3, (int64_t)map_n}}, maps);
        feed_ckpt_put(w, NULL, "losses", (feed_ckpt_shape){FEED_CKPT_F64, 1, {3}}, losses);
        feed_ckpt_commit(w);
        free(xs), free(maps);
    }
}

int feed_probe_run(feed_net *net, const char *network_path, const feed_dataset *ds, const feed_probe_config *cfg,
                   const char *dir, const char *prefix, const char *label, double *recon) {
    int d[4]; /* the final map (B, C, H, W) */
    FEED_CHECK(feed_net_tap(net, "final", d), "this is a bug", "network %s has no 'final' tap", network_path);
    FEED_CHECK(d[0] == cfg->batch, "this is a bug: plan the network for the probe's batch",
               "network planned for %d, probe batch %d", d[0], cfg->batch);
    int factor_c = (int)lround(cfg->rate * d[1]);
    probe p = {.cfg = cfg, .ds = ds, .dir = dir, .prefix = prefix, .network_path = network_path, .recon = recon,
               .key = {.batch = cfg->batch, .subset_per_class = cfg->subset_per_class, .seed = (int64_t)cfg->seed,
                       .map_c = d[1], .map_h = d[2], .map_w = d[3], .factor_c = factor_c < 1 ? 1 : factor_c,
                       .rate = cfg->rate, .lr = cfg->lr, .weight_decay = cfg->weight_decay}};
    feed_sha256_file(network_path, p.key.network_sha256);
    feed_cache_dataset_sha256(ds, p.key.dataset_sha256);
    p.para = feed_paraphraser_build(cfg->batch, d[1], (int)p.key.factor_c, d[2], d[3], cfg->seed, 0, 0);
    feed_sgd_init(&p.sgd, (feed_sgd_config){.momentum = 0.9f, .weight_decay = (float)cfg->weight_decay});
    p.momentum = feed_sgd_add_net(&p.sgd, p.para);

    feed_loader_config lc = feed_loader_config_train(cfg->batch, cfg->seed);
    lc.pad = 0, lc.random_crop = false, lc.hflip = false; /* the maps of the images themselves */
    lc.subset_per_class = cfg->subset_per_class;
    feed_loader *ld = feed_loader_create(ds, &lc);
    const int64_t steps = feed_loader_steps_per_epoch(ld);
    const size_t x_n = (size_t)cfg->batch * ds->channels * ds->height * ds->width;
    const size_t map_n = (size_t)d[0] * d[1] * d[2] * d[3];
    float *x = feed_xaligned(sizeof(float) * x_n, "input batch");
    int32_t *y = feed_xmalloc(sizeof(int32_t) * (size_t)cfg->batch, "labels");
    float *grad = feed_xaligned(sizeof(float) * map_n, "reconstruction gradient");

    feed_ckpt_dir_create(dir);
    int64_t global_step = 0;
    int e = resume(&p, &global_step);
    if (e > 0) printf("%s: resuming the probe after epoch %d (%s)\n", label, e, dir);
    bool stopped = false;
    for (; e < cfg->epochs && !stopped; e++) {
        double t0 = feed_now_seconds(), sum = 0;
        for (int64_t s = 0; s < steps; s++) {
            if (feed_signals_pending()) {
                stopped = true;
                break;
            }
            feed_loader_batch(ld, e, s, x, y);
            feed_net_forward(net, x, 0);
            const float *map = feed_net_tap(net, "final", NULL); /* (B, C, H, W) */
            if (global_step == 0) dump_for_test(&p, 0, NULL, x_n, NULL, map_n, 0);
            double loss = feed_paraphraser_step(p.para, &p.sgd, map, grad, cfg->lr);
            if (global_step < 3) dump_for_test(&p, (int)global_step, x, x_n, map, map_n, loss);
            sum += loss;
            global_step++;
        }
        if (stopped) break;
        recon[e] = sum / (double)steps;
        char *path = feed_ckpt_dir_path(dir, prefix, e + 1, global_step);
        save(&p, path, e + 1, global_step);
        free(path);
        feed_ckpt_dir_prune(dir, prefix, 2);
        printf("%s: probe epoch %d/%d  reconstruction L1 %.6g per element  %.0f img/s\n", label, e + 1, cfg->epochs,
               recon[e], (double)(steps * cfg->batch) / (feed_now_seconds() - t0));
        fflush(stdout);
    }
    if (!stopped) {
        char *final = feed_xstrdup(feed_fmt("%s/%s.h5", dir, prefix));
        save(&p, final, cfg->epochs, global_step);
        free(final);
    } else
        printf("%s: stop signal (%s): the probe stops after %d epochs; run the same command to resume\n", label,
               feed_signal_name(feed_signals_pending()), e);
    free(x), free(y), free(grad), free(p.momentum);
    feed_loader_destroy(ld);
    feed_sgd_free(&p.sgd);
    feed_net_free(p.para);
    return e;
}
