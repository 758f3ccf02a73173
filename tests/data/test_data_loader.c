/* test_data_loader.c - the loader against direct computations: augmentation on known pixels,
 * normalisation, epoch permutation, drop_last / keep last, subsets, shards, and prefetching
 * that never changes a batch. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/loader.h"
#include "feed/rng.h"
#include "feed_test.h"

/* A set whose pixel (i, y, x, c) is pseudo-random; label i (identity) or i % classes. */
static feed_dataset *make_set(int64_t n_train, int64_t n_test, int classes, bool label_is_index,
                              int h, int w, int c) {
    feed_dataset *ds = feed_dataset_new("synthetic", label_is_index ? (int)n_train : classes, h, w, c);
    for (int s = 0; s < 2; s++) {
        int64_t n = s == 0 ? n_train : n_test;
        feed_dataset_alloc_split(ds, (feed_split)s, n);
        for (int64_t i = 0; i < n * h * w * c; i++)
            ds->split[s].images[i] = (uint8_t)feed_rng_u32(99, FEED_RNG_TEST, (uint64_t)(s * 1000000 + i));
        for (int64_t i = 0; i < n; i++)
            ds->split[s].labels[i] = (int32_t)(label_is_index ? i % ds->num_classes : i % classes);
    }
    feed_dataset_compute_stats(ds);
    return ds;
}

/* ---- augmentation of known pixels, by hand ---- */

static void test_augment_by_hand(void) {
    /* 3x3 single-channel image, values 10..90; lut = identity on v (normalize off gives v/255). */
    const uint8_t img[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
    feed_dataset *ds = feed_dataset_new("hand", 2, 3, 3, 1);
    float lut[256];
    feed_augment_build_lut(ds, false, lut);
    float out[9];
    /* pad 1, zero mode, crop at (dy 0, dx 2): out[y][x] = P(y-1, x+1) */
    feed_augment_params p = {0, 2, false};
    feed_augment_image(img, 3, 3, 1, &p, 1, FEED_PAD_ZERO, lut, out);
    const float want_crop[9] = {0, 0, 0, 20, 30, 0, 50, 60, 0};
    for (int i = 0; i < 9; i++) EXPECT(out[i] == (float)want_crop[i] / 255.0f);
    /* the same crop, flipped: out[y][x] = P(y-1, (2-x)+1) */
    p.flip = true;
    feed_augment_image(img, 3, 3, 1, &p, 1, FEED_PAD_ZERO, lut, out);
    const float want_flip[9] = {0, 0, 0, 0, 30, 20, 0, 60, 50};
    for (int i = 0; i < 9; i++) EXPECT(out[i] == (float)want_flip[i] / 255.0f);
    /* reflect padding, crop at (0, 0): P(-1, -1) mirrors to (1, 1) */
    feed_augment_params q = {0, 0, false};
    feed_augment_image(img, 3, 3, 1, &q, 1, FEED_PAD_REFLECT, lut, out);
    const float want_reflect[9] = {50, 40, 50, 20, 10, 20, 50, 40, 50};
    for (int i = 0; i < 9; i++) EXPECT(out[i] == (float)want_reflect[i] / 255.0f);
    /* the far edge, crop at (2, 2): P(3, 3) mirrors to (1, 1) */
    q.dy = q.dx = 2;
    feed_augment_image(img, 3, 3, 1, &q, 1, FEED_PAD_REFLECT, lut, out);
    const float want_far[9] = {50, 60, 50, 80, 90, 80, 50, 60, 50};
    for (int i = 0; i < 9; i++) EXPECT(out[i] == (float)want_far[i] / 255.0f);
    /* normalisation table: (v/255 - mean) / std */
    ds->mean[0] = 0.25f;
    ds->std[0] = 0.5f;
    feed_augment_build_lut(ds, true, lut);
    EXPECT(lut[0] == -0.5f);
    EXPECT(lut[255] == 1.5f);
    EXPECT_NEAR_REL(lut[51], (0.2 - 0.25) / 0.5, 1e-6);
    feed_dataset_close(ds);
}

/* Crop offsets cover [0, 2*pad], flips are about half, off switches give the identity. */
static void test_augment_draws(void) {
    int seen_dy[9] = {0}, seen_dx[9] = {0}, flips = 0;
    const int n = 4000;
    for (int i = 0; i < n; i++) {
        feed_augment_params p = feed_augment_draw(5, 3, i, 4, true, true);
        EXPECT(p.dy >= 0 && p.dy <= 8 && p.dx >= 0 && p.dx <= 8);
        if (p.dy >= 0 && p.dy <= 8) seen_dy[p.dy]++;
        if (p.dx >= 0 && p.dx <= 8) seen_dx[p.dx]++;
        flips += p.flip;
    }
    for (int k = 0; k <= 8; k++) EXPECT(seen_dy[k] > n / 9 / 2 && seen_dx[k] > n / 9 / 2);
    EXPECT(flips > n * 45 / 100 && flips < n * 55 / 100);
    feed_augment_params off = feed_augment_draw(5, 3, 17, 4, false, false);
    EXPECT(off.dy == 4 && off.dx == 4 && !off.flip);
    /* The documented recipe: one Philox block for (seed, AUGMENT, epoch << 32 | index). */
    uint32_t w[4];
    feed_philox4x32_10(5, FEED_RNG_AUGMENT, ((uint64_t)3 << 32) | 17, w);
    feed_augment_params on = feed_augment_draw(5, 3, 17, 4, true, true);
    EXPECT_INT_EQ(on.dy, (int)(((uint64_t)w[0] * 9) >> 32));
    EXPECT_INT_EQ(on.dx, (int)(((uint64_t)w[1] * 9) >> 32));
    EXPECT_INT_EQ(on.flip, (int)(w[2] >> 31));
}

/* A loader batch equals the direct computation of every sample (crop, flip, pad, normalise). */
static void check_batch_direct(const feed_dataset *ds, feed_loader_config cfg) {
    feed_loader *ld = feed_loader_create(ds, &cfg);
    const int H = ds->height, W = ds->width, C = ds->channels, B = cfg.batch_size;
    float *out = feed_xmalloc(sizeof(float) * (size_t)B * C * H * W, "batch");
    int32_t labels[64];
    int64_t idx[64];
    int64_t mismatches = 0, checked = 0;
    for (int64_t epoch = 0; epoch < 2; epoch++)
        for (int64_t step = 0; step < feed_loader_steps_per_epoch(ld); step++) {
            int n = feed_loader_batch(ld, epoch, step, out, labels);
            EXPECT_INT_EQ(feed_loader_batch_indices(ld, epoch, step, idx), n);
            for (int j = 0; j < n; j++) {
                EXPECT_INT_EQ(labels[j], ds->split[cfg.split].labels[idx[j]]);
                feed_augment_params p = feed_augment_draw(cfg.seed, epoch, idx[j], cfg.pad, cfg.random_crop, cfg.hflip);
                const uint8_t *img = feed_dataset_image(ds, cfg.split, idx[j]);
                for (int c = 0; c < C; c++)
                    for (int y = 0; y < H; y++)
                        for (int x = 0; x < W; x++) {
                            int sy = y + p.dy - cfg.pad;
                            int sx = (p.flip ? W - 1 - x : x) + p.dx - cfg.pad;
                            int v;
                            if (cfg.pad_mode == FEED_PAD_REFLECT) {
                                sy = sy < 0 ? -sy : sy >= H ? 2 * H - 2 - sy : sy;
                                sx = sx < 0 ? -sx : sx >= W ? 2 * W - 2 - sx : sx;
                                v = img[(sy * W + sx) * C + c];
                            } else {
                                v = (sy < 0 || sy >= H || sx < 0 || sx >= W) ? 0 : img[(sy * W + sx) * C + c];
                            }
                            float want = cfg.normalize ? ((float)v / 255.0f - ds->mean[c]) / ds->std[c]
                                                       : (float)v / 255.0f;
                            float got = out[(((int64_t)j * C + c) * H + y) * W + x];
                            mismatches += got != want;
                            checked++;
                        }
            }
        }
    EXPECT_INT_EQ(mismatches, 0);
    EXPECT(checked > 0);
    free(out);
    feed_loader_destroy(ld);
}

static void test_batches_direct(void) {
    feed_dataset *ds = make_set(30, 10, 3, false, 6, 5, 3);
    feed_loader_config cfg = feed_loader_config_train(4, 11);
    cfg.pad = 2;
    check_batch_direct(ds, cfg); /* zero pad, prefetch on (default) */
    cfg.pad_mode = FEED_PAD_REFLECT;
    cfg.prefetch_depth = 0;
    check_batch_direct(ds, cfg);
    check_batch_direct(ds, feed_loader_config_eval(4)); /* normalisation only */
    cfg.normalize = false;
    check_batch_direct(ds, cfg);
    feed_dataset_close(ds);
}

/* ---- which samples: permutation, drop_last, keep last, seeds ---- */

static void test_epoch_order(void) {
    feed_dataset *ds = make_set(50, 10, 0, true, 4, 4, 1);
    feed_loader_config cfg = feed_loader_config_train(8, 3);
    cfg.prefetch_depth = 0;
    feed_loader *ld = feed_loader_create(ds, &cfg);
    EXPECT_INT_EQ(feed_loader_steps_per_epoch(ld), 6); /* 50 / 8, last 2 dropped */
    EXPECT_INT_EQ(feed_loader_samples_per_epoch(ld), 48);
    int64_t order[2][48], idx[8];
    for (int e = 0; e < 2; e++) {
        int seen[50] = {0};
        for (int s = 0; s < 6; s++) {
            EXPECT_INT_EQ(feed_loader_batch_indices(ld, e, s, idx), 8);
            for (int j = 0; j < 8; j++) {
                order[e][s * 8 + j] = idx[j];
                seen[idx[j]]++;
            }
        }
        int distinct = 0;
        for (int i = 0; i < 50; i++) distinct += seen[i] == 1;
        EXPECT_INT_EQ(distinct, 48);
    }
    int same = 0, identity = 0;
    for (int i = 0; i < 48; i++) {
        same += order[0][i] == order[1][i];
        identity += order[0][i] == i;
    }
    EXPECT(same < 10);     /* each epoch has its own permutation */
    EXPECT(identity < 10); /* and it is shuffled */
    /* The documented Fisher-Yates recipe gives this order. */
    uint32_t perm[50];
    for (int i = 0; i < 50; i++) perm[i] = (uint32_t)i;
    for (int i = 49; i > 0; i--) {
        uint32_t j = feed_rng_below(3, FEED_RNG_PERMUTATION, ((uint64_t)1 << 32) | (uint64_t)i, (uint32_t)i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int recipe = 0;
    for (int i = 0; i < 48; i++) recipe += order[1][i] == perm[i];
    EXPECT_INT_EQ(recipe, 48);
    /* Another seed, another order. */
    feed_loader_config other = cfg;
    other.seed = 4;
    feed_loader *ld2 = feed_loader_create(ds, &other);
    feed_loader_batch_indices(ld2, 0, 0, idx);
    int equal = 0;
    for (int j = 0; j < 8; j++) equal += idx[j] == order[0][j];
    EXPECT(equal < 8);
    feed_loader_destroy(ld2);
    feed_loader_destroy(ld);

    feed_dataset_close(ds);
}

/* Evaluation: file order, the last partial batch kept. */
static void test_eval_keep_last(void) {
    feed_dataset *ds = make_set(12, 10, 5, false, 3, 3, 1);
    feed_loader_config cfg = feed_loader_config_eval(4);
    feed_loader *ld = feed_loader_create(ds, &cfg);
    EXPECT_INT_EQ(feed_loader_steps_per_epoch(ld), 3);
    EXPECT_INT_EQ(feed_loader_samples_per_epoch(ld), 10);
    int64_t idx[4];
    EXPECT_INT_EQ(feed_loader_batch_indices(ld, 0, 2, idx), 2);
    EXPECT(idx[0] == 8 && idx[1] == 9);
    EXPECT_INT_EQ(feed_loader_batch_indices(ld, 5, 1, idx), 4);
    EXPECT(idx[0] == 4 && idx[3] == 7);
    float out[4 * 9];
    int32_t labels[4];
    EXPECT_INT_EQ(feed_loader_batch(ld, 0, 2, out, labels), 2);
    EXPECT(labels[0] == 8 % 5 && labels[1] == 9 % 5);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
}

/* Subsets: the first K per class, or a seed-chosen fraction of each class. */
static void test_subsets(void) {
    feed_dataset *ds = make_set(40, 4, 4, false, 2, 2, 1); /* labels i % 4: 10 per class */
    feed_loader_config cfg = feed_loader_config_eval(64);
    cfg.split = FEED_SPLIT_TRAIN;
    cfg.subset_per_class = 3;
    feed_loader *ld = feed_loader_create(ds, &cfg);
    int64_t idx[64];
    EXPECT_INT_EQ(feed_loader_batch_indices(ld, 0, 0, idx), 12);
    for (int j = 0; j < 12; j++) EXPECT_INT_EQ(idx[j], j); /* first 3 of each class = 0..11 */
    feed_loader_destroy(ld);

    cfg.subset_per_class = 0;
    cfg.subset_fraction = 0.5;
    cfg.seed = 8;
    ld = feed_loader_create(ds, &cfg);
    int n = feed_loader_batch_indices(ld, 0, 0, idx);
    EXPECT_INT_EQ(n, 20);
    int per_class[4] = {0}, ascending = 1;
    for (int j = 0; j < n; j++) {
        per_class[idx[j] % 4]++;
        if (j > 0 && idx[j] <= idx[j - 1]) ascending = 0;
    }
    for (int k = 0; k < 4; k++) EXPECT_INT_EQ(per_class[k], 5);
    EXPECT(ascending);
    cfg.seed = 9;
    feed_loader *other = feed_loader_create(ds, &cfg);
    int64_t idx2[64];
    EXPECT_INT_EQ(feed_loader_batch_indices(other, 0, 0, idx2), 20);
    EXPECT(memcmp(idx, idx2, sizeof(int64_t) * 20) != 0);
    feed_loader_destroy(other);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
}

/* Shards: training shards split the global order r, r+R, ... evenly; evaluation shards
 * cover every sample once. */
static void test_shards(void) {
    feed_dataset *ds = make_set(50, 10, 0, true, 2, 2, 1);
    feed_loader_config whole = feed_loader_config_train(48, 21);
    whole.prefetch_depth = 0;
    feed_loader *all = feed_loader_create(ds, &whole);
    int64_t global[48], idx[4];
    EXPECT_INT_EQ(feed_loader_batch_indices(all, 2, 0, global), 48);
    int mismatch = 0, covered[50] = {0};
    for (int r = 0; r < 3; r++) {
        feed_loader_config cfg = feed_loader_config_train(4, 21);
        cfg.shard_rank = r;
        cfg.shard_count = 3;
        feed_loader *ld = feed_loader_create(ds, &cfg);
        EXPECT_INT_EQ(feed_loader_steps_per_epoch(ld), 4); /* 16 samples per shard */
        for (int s = 0; s < 4; s++) {
            EXPECT_INT_EQ(feed_loader_batch_indices(ld, 2, s, idx), 4);
            for (int j = 0; j < 4; j++) {
                mismatch += idx[j] != global[(s * 4 + j) * 3 + r];
                covered[idx[j]]++;
            }
        }
        feed_loader_destroy(ld);
    }
    EXPECT_INT_EQ(mismatch, 0);
    int once = 0;
    for (int i = 0; i < 50; i++) once += covered[i] == 1;
    EXPECT_INT_EQ(once, 48);
    feed_loader_destroy(all);

    int eval_seen[10] = {0}, eval_total = 0;
    for (int r = 0; r < 3; r++) {
        feed_loader_config cfg = feed_loader_config_eval(2);
        cfg.shard_rank = r;
        cfg.shard_count = 3;
        feed_loader *ld = feed_loader_create(ds, &cfg);
        EXPECT_INT_EQ(feed_loader_samples_per_epoch(ld), r == 0 ? 4 : 3);
        for (int s = 0; s < feed_loader_steps_per_epoch(ld); s++) {
            int n = feed_loader_batch_indices(ld, 0, s, idx);
            for (int j = 0; j < n; j++) eval_seen[idx[j]]++, eval_total++;
        }
        feed_loader_destroy(ld);
    }
    EXPECT_INT_EQ(eval_total, 10);
    for (int i = 0; i < 10; i++) EXPECT_INT_EQ(eval_seen[i], 1);
    feed_dataset_close(ds);
}

/* Prefetching (1 and 3 threads) gives the same bytes as synchronous assembly, for requests
 * in order across epochs, repeated, skipped and jumping backwards. */
static void test_prefetch_same_bytes(void) {
    feed_dataset *ds = make_set(70, 5, 7, false, 8, 8, 3);
    feed_loader_config cfg = feed_loader_config_train(6, 77);
    cfg.prefetch_depth = 0;
    feed_loader *ref = feed_loader_create(ds, &cfg);
    const int64_t steps = feed_loader_steps_per_epoch(ref); /* 11 */
    const size_t floats = 6 * 3 * 8 * 8;
    float *want = feed_xmalloc(sizeof(float) * floats, "batch"), *got = feed_xmalloc(sizeof(float) * floats, "batch");
    int32_t want_l[6], got_l[6];
    const int64_t requests[][2] = {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}, {0, 7}, {0, 8},
                                   {0, 9}, {0, 10}, {1, 0}, {1, 1}, {1, 1}, {1, 4}, {1, 5}, {0, 3},
                                   {0, 4}, {7, 10}, {8, 0}, {8, 1}, {8, 2}, {2, 6}, {2, 7}};
    const int nreq = (int)(sizeof requests / sizeof requests[0]);
    const int settings[][2] = {{1, 1}, {3, 1}, {4, 3}}; /* depth, threads */
    for (int k = 0; k < 3; k++) {
        cfg.prefetch_depth = settings[k][0];
        cfg.prefetch_threads = settings[k][1];
        feed_loader *pf = feed_loader_create(ds, &cfg);
        int differ = 0;
        for (int r = 0; r < nreq; r++) {
            EXPECT(requests[r][1] < steps);
            int a = feed_loader_batch(ref, requests[r][0], requests[r][1], want, want_l);
            int b = feed_loader_batch(pf, requests[r][0], requests[r][1], got, got_l);
            differ += a != b || memcmp(want, got, sizeof(float) * floats) != 0 || memcmp(want_l, got_l, sizeof want_l) != 0;
        }
        EXPECT_INT_EQ(differ, 0);
        feed_loader_destroy(pf);
    }
    free(want);
    free(got);
    feed_loader_destroy(ref);
    feed_dataset_close(ds);
}

int main(void) {
    test_augment_by_hand();
    test_augment_draws();
    test_batches_direct();
    test_epoch_order();
    test_eval_keep_last();
    test_subsets();
    test_shards();
    test_prefetch_same_bytes();
    return feed_test_finish("test_data_loader");
}
