/* imagefolder_convert.c - an image folder (torchvision's ImageFolder layout) -> a data-set
 * file, streamed: the whole set is never in memory, only the file list and one slab.
 *
 * 1. list: classes from the training split's folder names, files in ImageFolder's order;
 * 2. hold out a seeded fraction of each class as the test split (folders of one split);
 * 3. probe every image's header: readable, size, grey or colour - so the output's shape is
 *    known and mixed sizes are refused before a pixel is decoded;
 * 4. decode, convert channels, Resize + CenterCrop, write in slabs (dataset_stream.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert_internal.h"
#include "dataset_stream.h"
#include "feed/check.h"
#include "feed/dataset.h"
#include "feed/rng.h"
#include "image_io.h"
#include "imagefolder_internal.h"

enum { SLAB = 256, SHOWN = 5 };

/* Files left out with --skip-bad, and why. */
typedef struct {
    char **lines; /* "path: reason" */
    int64_t n, cap;
} skip_list;

static void skip_add(skip_list *s, const char *rel, const char *why) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->lines = feed_xrealloc(s->lines, sizeof(char *) * (size_t)s->cap, "skipped files");
    }
    s->lines[s->n++] = feed_xstrdup(feed_fmt("%s: %s", rel, why));
}

static bool is_dir(const char *root, const char *name) {
    char *p = feed_path_join(root, name);
    struct stat st;
    bool d = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return d;
}

/* The split folders: train_dir ("train", or "" when the class folders are at the root) and
 * test_dir (NULL when the folder ships one split). */
static void find_splits(const char *dir, const feed_imagefolder_options *opt, const char **train_dir,
                        const char **test_dir) {
    if (!is_dir(dir, "train")) {
        *train_dir = "", *test_dir = NULL;
        if (opt->test_split)
            FEED_INPUT_ERROR("--test-split names the test folder beside DIR/train", "'%s' has no train/ folder", dir);
        return;
    }
    *train_dir = "train";
    if (opt->test_split) {
        if (!is_dir(dir, opt->test_split))
            FEED_INPUT_ERROR("give the name of a folder beside train/", "--test-split: no folder '%s/%s'", dir,
                             opt->test_split);
        *test_dir = opt->test_split;
        return;
    }
    bool test = is_dir(dir, "test"), val = is_dir(dir, "val");
    if (test && val)
        FEED_INPUT_ERROR("choose one with --test-split test or --test-split val",
                         "'%s' has both test/ and val/ folders", dir);
    *test_dir = test ? "test" : val ? "val" : NULL;
}

static int find_class(char **classes, int k, const char *name) {
    for (int i = 0; i < k; i++)
        if (strcmp(classes[i], name) == 0) return i;
    return -1;
}

/* Test classes must be training classes (by name): their index comes from the training split. */
static void check_test_classes(const char *dir, const char *test_dir, char **classes, int k) {
    int kt;
    char **test_classes = imagefolder_classes(dir, test_dir, &kt);
    for (int i = 0; i < kt; i++)
        if (find_class(classes, k, test_classes[i]) < 0)
            FEED_INPUT_ERROR("class indices come from the training folders: give every test class a training folder",
                             "'%s/%s/%s' is a class the training split (%s/train) does not have", dir, test_dir,
                             test_classes[i], dir);
    for (int i = 0; i < kt; i++) free(test_classes[i]);
    free(test_classes);
}

/* Files that are not .png/.jpg/.jpeg: refused, or skipped and listed with --skip-bad. */
static void handle_others(const char *dir, const folder_list *others, bool skip_bad, skip_list *skipped) {
    if (others->n == 0) return;
    if (!skip_bad) {
        char shown[1024] = "";
        for (int64_t i = 0; i < others->n && i < SHOWN; i++)
            snprintf(shown + strlen(shown), sizeof shown - strlen(shown), "%s%s", i ? ", " : "", others->v[i].rel);
        FEED_INPUT_ERROR("remove them, or pass --skip-bad to skip them (they are listed)",
                         "%lld files in '%s' are not images (.png, .jpg, .jpeg): %s%s", (long long)others->n, dir,
                         shown, others->n > SHOWN ? ", ..." : "");
    }
    for (int64_t i = 0; i < others->n; i++) skip_add(skipped, others->v[i].rel, "not a .png, .jpg or .jpeg file");
}

/* Moves a seeded fraction of each class of `all` to test, keeping the listing order in both. */
static void hold_out(const folder_list *all, int k, const int64_t *per_class, double fraction, uint64_t seed,
                     folder_list *train, folder_list *test) {
    bool *to_test = feed_xcalloc((size_t)all->n, sizeof(bool), "hold-out");
    int64_t first = 0;
    for (int c = 0; c < k; c++) {
        const int64_t n = per_class[c], m = (int64_t)floor(fraction * (double)n + 0.5);
        int64_t *order = feed_xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1), "hold-out");
        for (int64_t i = 0; i < n; i++) order[i] = i;
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates, class c's own stream */
            int64_t j = feed_rng_below(seed, (uint64_t)c, (uint64_t)i, (uint32_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (int64_t i = 0; i < m; i++) to_test[first + order[i]] = true;
        free(order);
        first += n;
    }
    for (int64_t i = 0; i < all->n; i++) {
        folder_list *dst = to_test[i] ? test : train;
        if (dst->n == dst->cap) {
            dst->cap = dst->cap ? 2 * dst->cap : 256;
            dst->v = feed_xrealloc(dst->v, sizeof *dst->v * (size_t)dst->cap, "file list");
        }
        dst->v[dst->n++] = (folder_item){.rel = feed_xstrdup(all->v[i].rel), .label = all->v[i].label};
    }
    free(to_test);
}

/* An image that cannot be read: refused, or (--skip-bad) recorded and left out. */
static void bad_image(const char *dir, const char *rel, const char *why, bool skip_bad, skip_list *skipped) {
    if (!skip_bad)
        FEED_INPUT_ERROR("replace or remove the file, or pass --skip-bad to skip unreadable images (listed)",
                         "'%s/%s': %s", dir, rel, why);
    skip_add(skipped, rel, why);
}

/* What the header pass learned. */
typedef struct {
    int height, width; /* of the first readable image */
    const char *first; /* its path */
    bool all_grey;
} probe_result;

/* Reads every header; drops unreadable files (--skip-bad) or refuses them; refuses mixed sizes
 * when no --size is given. */
static void probe_split(const char *dir, folder_list *l, const feed_imagefolder_options *opt, probe_result *r,
                        skip_list *skipped) {
    int64_t kept = 0;
    for (int64_t i = 0; i < l->n; i++) {
        char *path = feed_path_join(dir, l->v[i].rel);
        char why[512];
        int h, w, c;
        int rc = feed_image_probe(path, &h, &w, &c, why, sizeof why);
        free(path);
        if (rc != 0) {
            bad_image(dir, l->v[i].rel, why, opt->skip_bad, skipped);
            free(l->v[i].rel);
            continue;
        }
        if (!r->first) {
            r->height = h, r->width = w, r->first = l->v[i].rel;
        } else if (opt->size == 0 && (h != r->height || w != r->width))
            FEED_INPUT_ERROR("pass --size S to resize every image (shorter side to S, centre crop S x S)",
                             "images of different sizes: '%s/%s' is %dx%d, '%s/%s' is %dx%d (width x height)", dir,
                             r->first, r->width, r->height, dir, l->v[i].rel, w, h);
        if (c != 1) r->all_grey = false;
        l->v[kept++] = l->v[i];
    }
    l->n = kept;
}

/* One image into the slab (out: H x W x C of the data set). Returns 0, or -1 with why. */
static int load_image(const char *path, int S, int C, int H, int W, uint8_t *out, uint8_t **scratch,
                      size_t *scratch_cap, char *why, size_t cap) {
    feed_image img;
    if (feed_image_decode(path, &img, why, cap) != 0) return -1;
    feed_image_set_channels(&img, C);
    if (S == 0) {
        if (img.height != H || img.width != W) { /* the header said otherwise */
            snprintf(why, cap, "decoded as %dx%d, expected %dx%d", img.width, img.height, W, H);
            feed_image_free(&img);
            return -1;
        }
        memcpy(out, img.pixels, (size_t)H * (size_t)W * (size_t)C);
    } else {
        int rh, rw, top, left;
        feed_image_fit_square(img.height, img.width, S, &rh, &rw, &top, &left);
        size_t need = (size_t)rh * (size_t)rw * (size_t)C;
        if (need > *scratch_cap) {
            *scratch = feed_xrealloc(*scratch, need, "resized image");
            *scratch_cap = need;
        }
        feed_image_resize(img.pixels, img.height, img.width, C, *scratch, rh, rw);
        for (int y = 0; y < S; y++)
            memcpy(out + (size_t)y * (size_t)S * (size_t)C,
                   *scratch + ((size_t)(y + top) * (size_t)rw + (size_t)left) * (size_t)C, (size_t)S * (size_t)C);
    }
    feed_image_free(&img);
    return 0;
}

static void write_split(feed_dataset_stream *s, feed_split split, const char *dir, const folder_list *l,
                        const feed_imagefolder_options *opt, int C, int H, int W, skip_list *skipped) {
    const size_t image_bytes = (size_t)H * (size_t)W * (size_t)C;
    uint8_t *slab = feed_xmalloc(image_bytes * SLAB, "image slab");
    int32_t labels[SLAB];
    const char *paths[SLAB];
    uint8_t *scratch = NULL;
    size_t scratch_cap = 0;
    int filled = 0;
    for (int64_t i = 0; i < l->n; i++) {
        char *path = feed_path_join(dir, l->v[i].rel);
        char why[512];
        int rc = load_image(path, opt->size, C, H, W, slab + image_bytes * (size_t)filled, &scratch, &scratch_cap,
                            why, sizeof why);
        free(path);
        if (rc != 0) {
            bad_image(dir, l->v[i].rel, why, opt->skip_bad, skipped);
            continue;
        }
        labels[filled] = l->v[i].label;
        paths[filled] = l->v[i].rel;
        if (++filled == SLAB || i == l->n - 1) {
            feed_dataset_stream_write(s, split, filled, slab, labels, paths);
            filled = 0;
        }
    }
    if (filled) feed_dataset_stream_write(s, split, filled, slab, labels, paths);
    free(scratch);
    free(slab);
}

static const char *base_name(const char *dir) {
    static char name[256];
    snprintf(name, sizeof name, "%s", dir);
    size_t n = strlen(name);
    while (n > 1 && name[n - 1] == '/') name[--n] = 0;
    const char *slash = strrchr(name, '/');
    return slash && slash[1] ? slash + 1 : name;
}

void feed_convert_imagefolder(const char *dir, const char *out, const feed_imagefolder_options *opt) {
    feed_require_dir(dir, "give the folder that holds the class folders (or train/ and test/ or val/)");
    FEED_CHECK(opt->size >= 0 && opt->size <= FEED_MAX_SIDE, "--size is checked by the command line", "size %d",
               opt->size);
    const char *train_dir, *test_dir;
    find_splits(dir, opt, &train_dir, &test_dir);
    int K;
    char **classes = imagefolder_classes(dir, train_dir, &K);
    if (!test_dir && !(opt->val_fraction > 0))
        FEED_INPUT_ERROR("pass --val-fraction F (e.g. 0.1) to hold out a seeded fraction of each class as the test split",
                         "'%s' has one split (%s): no test/ or val/ folder", dir,
                         train_dir[0] ? "train/" : "class folders at its top");
    if (test_dir && opt->val_fraction > 0)
        FEED_INPUT_ERROR("leave out --val-fraction: the test split is the folder's own",
                         "'%s' has a test split already (%s/)", dir, test_dir);

    int64_t *per_class = feed_xcalloc((size_t)K, sizeof(int64_t), "class counts");
    folder_list listed = {0}, others = {0}, split[FEED_NUM_SPLITS] = {{0}};
    skip_list skipped = {0};
    imagefolder_list_split(dir, train_dir, classes, K, true, &listed, &others, per_class);
    if (test_dir) {
        check_test_classes(dir, test_dir, classes, K);
        split[FEED_SPLIT_TRAIN] = listed;
        imagefolder_list_split(dir, test_dir, classes, K, false, &split[FEED_SPLIT_TEST], &others, per_class);
    } else {
        hold_out(&listed, K, per_class, opt->val_fraction, opt->seed, &split[FEED_SPLIT_TRAIN], &split[FEED_SPLIT_TEST]);
        folder_list_free(&listed);
    }
    handle_others(dir, &others, opt->skip_bad, &skipped);

    probe_result probe = {.all_grey = true};
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++) probe_split(dir, &split[sp], opt, &probe, &skipped);
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++)
        if (split[sp].n == 0)
            FEED_INPUT_ERROR(test_dir || sp == FEED_SPLIT_TRAIN ? "every split needs images" : "use a larger --val-fraction",
                             "the %s split of '%s' has no readable images", feed_split_name((feed_split)sp), dir);
    const int C = opt->channels ? opt->channels : probe.all_grey ? 1 : 3;
    const int H = opt->size ? opt->size : probe.height, W = opt->size ? opt->size : probe.width;
    if (H > FEED_MAX_SIDE || W > FEED_MAX_SIDE)
        FEED_INPUT_ERROR(feed_fmt("pass --size S (at most %d)", FEED_MAX_SIDE), "images of %dx%d are larger than %d",
                         W, H, FEED_MAX_SIDE);
    if (opt->progress)
        fprintf(stderr, "feed_convert: %s: %d classes, train %lld, test %lld images -> %dx%d %s%s\n", dir, K,
                (long long)split[0].n, (long long)split[1].n, W, H, C == 1 ? "grey" : "RGB",
                opt->size ? " (Resize + CenterCrop)" : "");

    feed_dataset *meta = feed_dataset_new(opt->name ? opt->name : base_name(dir), K, H, W, C);
    feed_dataset_set_class_names(meta, (const char *const *)classes);
    const int64_t n[FEED_NUM_SPLITS] = {split[0].n, split[1].n};
    feed_dataset_stream *s = feed_dataset_stream_open(meta, n, out, opt->overwrite, true, opt->progress);
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++) write_split(s, (feed_split)sp, dir, &split[sp], opt, C, H, W, &skipped);
    if (skipped.n) {
        feed_dataset_stream_put_strings(s, "skipped_files", (const char *const *)skipped.lines, skipped.n);
        fprintf(stderr, "feed_convert: skipped %lld files (--skip-bad; listed in the attribute skipped_files):\n",
                (long long)skipped.n);
        for (int64_t i = 0; i < skipped.n; i++) fprintf(stderr, "  %s\n", skipped.lines[i]);
    }
    feed_dataset_stream_close(s, NULL, NULL);

    for (int64_t i = 0; i < skipped.n; i++) free(skipped.lines[i]);
    free(skipped.lines);
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++) folder_list_free(&split[sp]);
    folder_list_free(&others);
    for (int k = 0; k < K; k++) free(classes[k]);
    free(classes);
    free(per_class);
    feed_dataset_close(meta);
}
