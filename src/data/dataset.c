/* dataset.c - the in-memory data set: construction, accessors, statistics, freeing.
 * Reading a file is in dataset_open.c, writing in dataset_write.c. */
#include "feed/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "dataset_stream.h"

const char *feed_split_name(feed_split split) { return split == FEED_SPLIT_TRAIN ? "train" : "test"; }

feed_dataset *feed_dataset_new(const char *name, int num_classes, int height, int width,
                               int channels) {
    FEED_CHECK(num_classes >= 1 && height >= 1 && width >= 1 && channels >= 1 &&
                   channels <= FEED_MAX_CHANNELS,
               "this is a bug in the caller", "feed_dataset_new: bad shape K=%d H=%d W=%d C=%d",
               num_classes, height, width, channels);
    feed_dataset *ds = feed_xcalloc(1, sizeof *ds, "data set");
    ds->name = feed_xstrdup(name);
    ds->num_classes = num_classes;
    ds->height = height;
    ds->width = width;
    ds->channels = channels;
    ds->class_names = feed_xcalloc((size_t)num_classes, sizeof(char *), "class names");
    for (int k = 0; k < num_classes; k++) ds->class_names[k] = feed_xstrdup(feed_fmt("%d", k));
    for (int c = 0; c < FEED_MAX_CHANNELS; c++) {
        ds->mean[c] = 0.0f;
        ds->std[c] = 1.0f;
    }
    return ds;
}

int64_t feed_dataset_image_bytes(const feed_dataset *ds) {
    return (int64_t)ds->height * ds->width * ds->channels;
}

const uint8_t *feed_dataset_image(const feed_dataset *ds, feed_split split, int64_t i) {
    return ds->split[split].images + i * feed_dataset_image_bytes(ds);
}

void feed_dataset_alloc_split(feed_dataset *ds, feed_split split, int64_t n) {
    FEED_CHECK(n >= 0, "this is a bug in the caller", "negative image count %lld", (long long)n);
    feed_split_data *s = &ds->split[split];
    free(s->images);
    free(s->labels);
    s->n = n;
    s->images = feed_xcalloc((size_t)n, (size_t)feed_dataset_image_bytes(ds),
                             feed_fmt("%s images of %s", feed_split_name(split), ds->name));
    s->labels = feed_xcalloc((size_t)n, sizeof(int32_t),
                             feed_fmt("%s labels of %s", feed_split_name(split), ds->name));
}

void feed_dataset_set_class_names(feed_dataset *ds, const char *const *names) {
    for (int k = 0; k < ds->num_classes; k++) {
        free(ds->class_names[k]);
        ds->class_names[k] = feed_xstrdup(names[k]);
    }
}

void feed_dataset_add_source(feed_dataset *ds, const char *path) {
    int i = ds->num_sources++;
    ds->source_files = feed_xrealloc(ds->source_files, sizeof(char *) * (size_t)ds->num_sources,
                                     "source file list");
    ds->source_sha256 = feed_xrealloc(ds->source_sha256, sizeof(char *) * (size_t)ds->num_sources,
                                      "source checksum list");
    const char *slash = strrchr(path, '/');
    ds->source_files[i] = feed_xstrdup(slash ? slash + 1 : path);
    ds->source_sha256[i] = feed_xmalloc(65, "sha256 string");
    feed_sha256_file(path, ds->source_sha256[i]);
}

void feed_pixel_hist_add(feed_pixel_hist *h, const uint8_t *p, size_t n) {
    const int C = h->channels;
    for (size_t i = 0; i < n; i += (size_t)C)
        for (int c = 0; c < C; c++) h->count[c][p[i + (size_t)c]]++;
}

/* Exact: each byte value counted, then summed in double. */
void feed_pixel_hist_stats(const feed_pixel_hist *h, float *mean_out, float *std_out) {
    for (int c = 0; c < h->channels; c++) {
        double sum = 0, sum2 = 0, pixels = 0;
        for (int v = 0; v < 256; v++) {
            double x = v / 255.0;
            pixels += (double)h->count[c][v];
            sum += (double)h->count[c][v] * x;
            sum2 += (double)h->count[c][v] * x * x;
        }
        double mean = pixels > 0 ? sum / pixels : 0;
        double var = pixels > 0 ? sum2 / pixels - mean * mean : 0;
        mean_out[c] = (float)mean;
        std_out[c] = (float)sqrt(var > 0 ? var : 0);
    }
}

void feed_dataset_compute_stats(feed_dataset *ds) {
    const feed_split_data *s = &ds->split[FEED_SPLIT_TRAIN];
    FEED_CHECK(s->n > 0, "the training split is empty", "cannot compute mean/std of %s", ds->name);
    feed_pixel_hist h; /* 8 KB */
    memset(&h, 0, sizeof h);
    h.channels = ds->channels;
    feed_pixel_hist_add(&h, s->images, (size_t)s->n * (size_t)feed_dataset_image_bytes(ds));
    feed_pixel_hist_stats(&h, ds->mean, ds->std);
}

int64_t feed_dataset_find_bad_label(const feed_dataset *ds, feed_split split) {
    const feed_split_data *s = &ds->split[split];
    for (int64_t i = 0; i < s->n; i++)
        if (s->labels[i] < 0 || s->labels[i] >= ds->num_classes) return i;
    return -1;
}

static void free_strings(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void feed_dataset_close(feed_dataset *ds) {
    if (!ds) return;
    for (int s = 0; s < FEED_NUM_SPLITS; s++) {
        free(ds->split[s].images);
        free(ds->split[s].labels);
    }
    free_strings(ds->class_names, ds->num_classes);
    free_strings(ds->source_files, ds->num_sources);
    free_strings(ds->source_sha256, ds->num_sources);
    free(ds->name);
    free(ds->path);
    free(ds);
}
