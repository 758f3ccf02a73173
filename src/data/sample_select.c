/* sample_select.c - the subset policy: all samples, the first K of each class, or a fraction
 * of each class chosen by random keys feed_rng_u32(seed, FEED_RNG_SUBSET, file index). */
#include <stdlib.h>

#include "feed/check.h"
#include "feed/rng.h"
#include "loader_internal.h"

typedef struct keyed_sample {
    int32_t label;
    uint32_t key;
    int64_t index;
} keyed_sample;

static int by_label_key_index(const void *a, const void *b) {
    const keyed_sample *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* keep[i] for a fraction f of each class: the round(f * n_c) samples with the smallest keys. */
static void mark_fraction(const feed_dataset *ds, const feed_loader_config *cfg, unsigned char *keep) {
    const feed_split_data *s = &ds->split[cfg->split];
    keyed_sample *v = feed_xmalloc(sizeof *v * (size_t)s->n, "subset keys");
    int64_t *class_count = feed_xcalloc((size_t)ds->num_classes, sizeof(int64_t), "class counts");
    for (int64_t i = 0; i < s->n; i++) {
        v[i] = (keyed_sample){s->labels[i], feed_rng_u32(cfg->seed, FEED_RNG_SUBSET, (uint64_t)i), i};
        class_count[s->labels[i]]++;
    }
    qsort(v, (size_t)s->n, sizeof *v, by_label_key_index);
    for (int64_t i = 0, class_start = 0; i < s->n; i++) {
        if (i > 0 && v[i].label != v[i - 1].label) class_start = i;
        int64_t quota = (int64_t)(cfg->subset_fraction * (double)class_count[v[i].label] + 0.5);
        keep[v[i].index] = (i - class_start) < quota;
    }
    free(class_count);
    free(v);
}

int64_t *feed_select_samples(const feed_dataset *ds, const feed_loader_config *cfg, int64_t *n_out) {
    const feed_split_data *s = &ds->split[cfg->split];
    unsigned char *keep = feed_xmalloc((size_t)s->n ? (size_t)s->n : 1, "subset mask");
    if (cfg->subset_per_class > 0) {
        int64_t *seen = feed_xcalloc((size_t)ds->num_classes, sizeof(int64_t), "class counts");
        for (int64_t i = 0; i < s->n; i++) keep[i] = seen[s->labels[i]]++ < cfg->subset_per_class;
        free(seen);
    } else if (cfg->subset_fraction > 0.0) {
        mark_fraction(ds, cfg, keep);
    } else {
        for (int64_t i = 0; i < s->n; i++) keep[i] = 1;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < s->n; i++) n += keep[i];
    int64_t *selected = feed_xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1), "selected samples");
    for (int64_t i = 0, j = 0; i < s->n; i++)
        if (keep[i]) selected[j++] = i;
    free(keep);
    *n_out = n;
    return selected;
}
