/* fuzz_dataset.c - libFuzzer target: the data-set reader on arbitrary files.
 *
 * Input: the bytes of a file; written to /dev/shm and opened with feed_dataset_open, as
 * `feed_mpi` does with data.path. A file it accepts must be a consistent data set (shapes,
 * label range, statistics). Mutating a real file mostly exercises HDF5's own parser; the
 * structure-aware fuzz_dataset_gen.c reaches our validation more directly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/dataset.h"
#include "fuzz_common.h"

static volatile uint8_t g_sink;

/* What feed_dataset_open promises about a data set it returns. */
static void check_dataset(const feed_dataset *ds) {
    bool ok = ds->num_classes >= 1 && ds->height >= 1 && ds->width >= 1 && ds->channels >= 1 &&
              ds->channels <= FEED_MAX_CHANNELS && ds->name && ds->class_names;
    for (int s = 0; ok && s < FEED_NUM_SPLITS; s++) {
        const feed_split_data *d = &ds->split[s];
        ok = d->n >= 1 && d->images && d->labels;
        for (int64_t i = 0; ok && i < d->n; i++) ok = d->labels[i] >= 0 && d->labels[i] < ds->num_classes;
    }
    for (int c = 0; ok && c < ds->channels; c++) ok = isfinite(ds->mean[c]) && ds->std[c] > 0;
    for (int k = 0; ok && k < ds->num_classes; k++) ok = ds->class_names[k] != NULL;
    if (!ok) {
        fprintf(stderr, "fuzz_dataset: feed_dataset_open returned an inconsistent data set\n");
        abort();
    }
    /* touch every byte so ASan sees a short buffer */
    uint8_t sum = 0;
    for (int s = 0; s < FEED_NUM_SPLITS; s++)
        for (int64_t i = 0; i < ds->split[s].n * feed_dataset_image_bytes(ds); i++) sum += ds->split[s].images[i];
    g_sink = sum;
}

static void open_dataset(void *path) {
    feed_dataset *ds = feed_dataset_open(path);
    fuzz_require_no_open_h5("feed_dataset_open");
    check_dataset(ds);
    feed_dataset_close(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_init();
    const char *path = fuzz_tmp_path("dataset.h5");
    fuzz_write_file(path, data, size);
    fuzz_catch(open_dataset, (void *)path);
    return 0;
}
