/* loader.c - loader configuration, validation, and batch assembly (contract in
 * include/feed/loader.h). Prefetching is in loader_prefetch.c, sample choice in sample_*.c. */
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "loader_internal.h"

feed_loader_config feed_loader_config_train(int batch_size, uint64_t seed) {
    feed_loader_config c;
    memset(&c, 0, sizeof c);
    c.split = FEED_SPLIT_TRAIN;
    c.batch_size = batch_size;
    c.seed = seed;
    c.shuffle = true;
    c.drop_last = true;
    c.pad = 4;
    c.pad_mode = FEED_PAD_ZERO;
    c.random_crop = true;
    c.hflip = true;
    c.normalize = true;
    c.shard_rank = 0;
    c.shard_count = 1;
    c.prefetch_depth = 2;
    c.prefetch_threads = 1;
    return c;
}

feed_loader_config feed_loader_config_eval(int batch_size) {
    feed_loader_config c = feed_loader_config_train(batch_size, 0);
    c.split = FEED_SPLIT_TEST;
    c.shuffle = false;
    c.drop_last = false;
    c.pad = 0;
    c.random_crop = false;
    c.hflip = false;
    c.prefetch_depth = 0;
    c.prefetch_threads = 0;
    return c;
}

#define CONFIG_HINT "fix the loader settings (data section of the config)"

static void validate(const feed_dataset *ds, const feed_loader_config *c) {
    if (c->split != FEED_SPLIT_TRAIN && c->split != FEED_SPLIT_TEST)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: split %d is neither train nor test", (int)c->split);
    if (c->batch_size < 1) FEED_INPUT_ERROR(CONFIG_HINT, "loader: batch_size %d must be >= 1", c->batch_size);
    if (ds->height > FEED_AUGMENT_MAX_SIDE || ds->width > FEED_AUGMENT_MAX_SIDE)
        FEED_INPUT_ERROR("resize the images when converting", "loader: images of %s are %dx%d, at most %d",
                         ds->name, ds->height, ds->width, FEED_AUGMENT_MAX_SIDE);
    if (c->pad < 0 || c->pad > FEED_AUGMENT_MAX_SIDE)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: pad %d must be in [0, %d]", c->pad, FEED_AUGMENT_MAX_SIDE);
    if (c->pad_mode != FEED_PAD_ZERO && c->pad_mode != FEED_PAD_REFLECT)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: unknown pad mode %d", (int)c->pad_mode);
    if (c->pad_mode == FEED_PAD_REFLECT && (c->pad >= ds->height || c->pad >= ds->width))
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: reflect padding %d needs images larger than it (%s: %dx%d)",
                         c->pad, ds->name, ds->height, ds->width);
    if (c->subset_per_class < 0)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: subset_per_class %lld must be >= 0", (long long)c->subset_per_class);
    if (!(c->subset_fraction >= 0.0 && c->subset_fraction < 1.0))
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: subset_fraction %g must be in (0, 1) (0: off)", c->subset_fraction);
    if (c->subset_per_class > 0 && c->subset_fraction > 0.0)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: give subset_per_class or subset_fraction, not both");
    if (c->shard_count < 1 || c->shard_rank < 0 || c->shard_rank >= c->shard_count)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: shard %d of %d: need 0 <= rank < count", c->shard_rank,
                         c->shard_count);
    if (c->prefetch_depth < 0 || c->prefetch_threads < 0 || c->prefetch_threads > 64)
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: prefetch depth %d / threads %d: need depth >= 0, 0 <= threads <= 64",
                         c->prefetch_depth, c->prefetch_threads);
}

feed_loader *feed_loader_create(const feed_dataset *ds, const feed_loader_config *cfg) {
    validate(ds, cfg);
    feed_loader *ld = feed_xcalloc(1, sizeof *ld, "loader");
    ld->ds = ds;
    ld->cfg = *cfg;
    ld->selected = feed_select_samples(ds, cfg, &ld->n_selected);
    if (ld->n_selected >= ((int64_t)1 << 32))
        FEED_INPUT_ERROR(CONFIG_HINT, "loader: %lld samples: at most 2^32 - 1", (long long)ld->n_selected);
    const int64_t R = cfg->shard_count, r = cfg->shard_rank, B = cfg->batch_size;
    /* Training shards all get floor(n/R) samples so every rank runs the same number of steps;
     * evaluation shards take every R-th sample, so the first n % R shards get one more. */
    ld->shard_samples = cfg->drop_last ? ld->n_selected / R : (ld->n_selected - r + R - 1) / R;
    ld->steps = cfg->drop_last ? ld->shard_samples / B : (ld->shard_samples + B - 1) / B;
    if (ld->steps < 1)
        FEED_INPUT_ERROR("use a smaller batch, a larger subset or fewer shards",
                         "loader: no batch to make: %lld samples selected from the %s split of %s, "
                         "%lld for shard %d of %d, batch size %d%s",
                         (long long)ld->n_selected, feed_split_name(cfg->split), ds->name,
                         (long long)ld->shard_samples, cfg->shard_rank, cfg->shard_count,
                         cfg->batch_size, cfg->drop_last ? " (drop_last)" : "");
    ld->sample_floats = (int64_t)ds->channels * ds->height * ds->width;
    ld->lut = feed_xmalloc(sizeof(float) * 256 * (size_t)ds->channels, "normalisation table");
    feed_augment_build_lut(ds, cfg->normalize, ld->lut);
    ld->caller_cache.epoch = -1;
    if (cfg->prefetch_depth > 0)
        ld->prefetch = feed_prefetch_start(ld, cfg->prefetch_depth,
                                           cfg->prefetch_threads > 0 ? cfg->prefetch_threads : 1);
    return ld;
}

void feed_loader_destroy(feed_loader *ld) {
    if (!ld) return;
    if (ld->prefetch) feed_prefetch_stop(ld->prefetch);
    feed_order_cache_free(&ld->caller_cache);
    free(ld->selected);
    free(ld->lut);
    free(ld);
}

int64_t feed_loader_steps_per_epoch(const feed_loader *ld) { return ld->steps; }

int64_t feed_loader_samples_per_epoch(const feed_loader *ld) {
    return ld->cfg.drop_last ? ld->steps * ld->cfg.batch_size : ld->shard_samples;
}

void feed_loader_batch_shape(const feed_loader *ld, int dims[4]) {
    dims[0] = ld->cfg.batch_size;
    dims[1] = ld->ds->channels;
    dims[2] = ld->ds->height;
    dims[3] = ld->ds->width;
}

int feed_loader_assemble(const feed_loader *ld, feed_order_cache *cache, int64_t epoch,
                         int64_t step, float *out_nchw, int32_t *labels) {
    enum { WINDOW = 64 }; /* indices are fetched in windows so they live on the stack */
    const feed_dataset *ds = ld->ds;
    const feed_loader_config *c = &ld->cfg;
    const int32_t *split_labels = ds->split[c->split].labels;
    int64_t idx[WINDOW];
    int total = 0;
    for (;;) {
        int count = feed_batch_indices(ld, cache, epoch, step, total, WINDOW, idx);
        for (int j = 0; j < count; j++) {
            const int64_t i = idx[j];
            const feed_augment_params p = feed_loader_augment_of(ld, epoch, i);
            float *dst = out_nchw + (int64_t)(total + j) * ld->sample_floats; /* C x H x W */
            feed_augment_image(feed_dataset_image(ds, c->split, i), ds->height, ds->width,
                               ds->channels, &p, c->pad, c->pad_mode, ld->lut, dst);
            labels[total + j] = split_labels[i];
        }
        total += count;
        if (count < WINDOW) return total;
    }
}

feed_augment_params feed_loader_augment_of(const feed_loader *ld, int64_t epoch, int64_t i) {
    const feed_loader_config *c = &ld->cfg;
    if (c->augment_views > 0)
        return feed_augment_draw(c->augment_seed, epoch % c->augment_views, i, c->pad, c->random_crop, c->hflip);
    return feed_augment_draw(c->seed, epoch, i, c->pad, c->random_crop, c->hflip);
}

const int64_t *feed_loader_selected(const feed_loader *ld, int64_t *n) {
    *n = ld->n_selected;
    return ld->selected;
}

int feed_loader_batch_indices(feed_loader *ld, int64_t epoch, int64_t step, int64_t *idx) {
    return feed_batch_indices(ld, &ld->caller_cache, epoch, step, 0, ld->cfg.batch_size, idx);
}

int feed_loader_batch(feed_loader *ld, int64_t epoch, int64_t step, float *out_nchw,
                      int32_t *labels) {
    if (ld->prefetch) {
        int got = feed_prefetch_take(ld->prefetch, epoch, step, out_nchw, labels);
        if (got >= 0) return got;
    }
    return feed_loader_assemble(ld, &ld->caller_cache, epoch, step, out_nchw, labels);
}
