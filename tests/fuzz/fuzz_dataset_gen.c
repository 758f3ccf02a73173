/* fuzz_dataset_gen.c - libFuzzer target: the data-set reader on well-formed HDF5 files.
 *
 * The input does not hold a file but the choices for one: for every object and root
 * attribute of the layout (include/feed/dataset.h) whether it is there, its type, shape and
 * values. HDF5 writes that file to /dev/shm, feed_dataset_open reads it. So every input is
 * a valid HDF5 file and the fuzzer spends its time in our validation (types, shapes,
 * counts, label range, statistics) instead of in HDF5's parser (fuzz_dataset.c covers that).
 * An accepted file must give a consistent data set, as fuzz_dataset.c checks.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/dataset.h"
#include "fuzz_common.h"
#include "fuzz_h5_build.h"

/* The shape of a well-formed set this input aims at. */
typedef struct {
    int classes, h, w, c;
    hsize_t n[FEED_NUM_SPLITS];
} target_shape;

/* An attribute that is usually right (the given values) and sometimes absent, of another
 * type or count, or arbitrary. */
static void numeric_attr(fuzz_bytes *in, hid_t file, const char *name, fb_type good, int n, const double *values) {
    switch (fuzz_pick(in, 8)) {
    case 0: return; /* absent */
    case 1: { /* any type, any shape, raw values */
        hsize_t dims[6];
        int rank = fb_shape(in, 1, (hsize_t[]){(hsize_t)n}, dims);
        fb_attr(in, file, name, (fb_type)fuzz_pick(in, FB_NUM_TYPES), rank, dims);
        return;
    }
    case 2: /* the right values in another numeric type (converted, possibly clipped) */
        fb_attr_num(file, name, (fb_type)fuzz_pick(in, FB_F64 + 1), n, values);
        return;
    case 3: { /* the right type, values from the input */
        double v[FEED_MAX_CHANNELS + 2];
        for (int i = 0; i < n && i < FEED_MAX_CHANNELS + 2; i++) {
            uint64_t bits = fuzz_u64(in);
            memcpy(&v[i], &bits, sizeof bits);
            if (isnan(v[i]) || isinf(v[i])) continue;
            v[i] = fuzz_bool(in) ? (double)(int32_t)bits : v[i];
        }
        fb_attr_num(file, name, good, n, v);
        return;
    }
    default: fb_attr_num(file, name, good, n, values); return;
    }
}

static void string_attr(fuzz_bytes *in, hid_t file, const char *name, int n, const char *const *values) {
    switch (fuzz_pick(in, 8)) {
    case 0: return;
    case 1: {
        hsize_t dims[6];
        int rank = fb_shape(in, n == 1 ? 0 : 1, (hsize_t[]){(hsize_t)n}, dims);
        fb_attr(in, file, name, fuzz_bool(in) ? FB_STR_VLEN : FB_STR_FIXED, rank, dims);
        return;
    }
    case 2: { /* numbers instead of text */
        hsize_t dims[1] = {(hsize_t)n};
        fb_attr(in, file, name, (fb_type)fuzz_pick(in, FB_F64 + 1), n == 1 ? 0 : 1, dims);
        return;
    }
    default:
        if (n == 1) {
            fb_attr_str(file, name, values[0], fuzz_bool(in));
        } else { /* a 1-D array of vlen strings, as h5py writes a list of str */
            hid_t type = fb_h5_type(FB_STR_VLEN, 0), space = fb_space(1, (hsize_t[]){(hsize_t)n});
            hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
            if (attr < 0 || (n > 0 && H5Awrite(attr, type, values) < 0)) abort();
            H5Aclose(attr);
            H5Sclose(space);
            H5Tclose(type);
        }
        return;
    }
}

static void write_split(fuzz_bytes *in, hid_t file, const target_shape *ts, int split) {
    const char *name = feed_split_name((feed_split)split);
    char path[64];
    if (fuzz_pick(in, 16) == 0) return; /* split missing */
    hsize_t want[4] = {ts->n[split], (hsize_t)ts->h, (hsize_t)ts->w, (hsize_t)ts->c}, dims[6];
    snprintf(path, sizeof path, "%s/images", name);
    if (fuzz_pick(in, 16) != 0) {
        int rank = fb_shape(in, 4, want, dims);
        fb_type t = fuzz_pick(in, 6) == 0 ? (fb_type)fuzz_pick(in, FB_NUM_TYPES) : FB_U8;
        H5Dclose(fb_dataset(in, file, path, t, rank, dims, NULL, 0));
    }
    snprintf(path, sizeof path, "%s/labels", name);
    if (fuzz_pick(in, 16) != 0) {
        int rank = fb_shape(in, 1, want, dims);
        fb_type t = fuzz_pick(in, 6) == 0 ? (fb_type)fuzz_pick(in, FB_NUM_TYPES) : FB_I32;
        /* labels: mostly in range (one class byte per label, little-endian int32), else raw */
        uint8_t good[4 * 64] = {0};
        size_t n = ts->n[split] < 64 ? (size_t)ts->n[split] : 64;
        for (size_t i = 0; i < n; i++) good[4 * i] = (uint8_t)(fuzz_u8(in) % ts->classes);
        bool raw = fuzz_pick(in, 4) == 0 || t != FB_I32;
        H5Dclose(fb_dataset(in, file, path, t, rank, dims, raw ? NULL : good, 4 * n));
    }
}

static void build_file(fuzz_bytes *in, const char *path) {
    target_shape ts = {(int)fuzz_range(in, 1, 12), (int)fuzz_range(in, 1, 8), (int)fuzz_range(in, 1, 8),
                       (int)fuzz_range(in, 1, FEED_MAX_CHANNELS), {(hsize_t)fuzz_range(in, 1, 24),
                                                                   (hsize_t)fuzz_range(in, 1, 12)}};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 20, 1); /* built in memory, written to `path` once at close */
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0) abort();
    string_attr(in, file, "format", 1, (const char *[]){FEED_DATASET_FORMAT});
    numeric_attr(in, file, "format_version", FB_I32, 1, (double[]){FEED_DATASET_FORMAT_VERSION});
    string_attr(in, file, "name", 1, (const char *[]){"fuzz"});
    numeric_attr(in, file, "num_classes", FB_I32, 1, (double[]){ts.classes});
    const char *names[12] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"};
    string_attr(in, file, "class_names", ts.classes, names);
    for (int s = 0; s < FEED_NUM_SPLITS; s++) write_split(in, file, &ts, s);
    double mean[FEED_MAX_CHANNELS] = {0.5, 0.4, 0.3, 0.2}, std[FEED_MAX_CHANNELS] = {0.25, 0.2, 0.3, 0.1};
    numeric_attr(in, file, "mean", FB_F32, ts.c, mean);
    numeric_attr(in, file, "std", FB_F32, ts.c, std);
    if (fuzz_bool(in)) {
        int n = (int)fuzz_range(in, 0, 3);
        const char *files[3] = {"train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "x"};
        string_attr(in, file, "source_files", n, files);
        string_attr(in, file, "source_sha256", (int)fuzz_range(in, 0, 3), files);
    }
    if (H5Fclose(file) < 0) abort();
}

static void open_dataset(void *path) {
    feed_dataset *ds = feed_dataset_open(path);
    fuzz_require_no_open_h5("feed_dataset_open");
    bool ok = ds->channels >= 1 && ds->channels <= FEED_MAX_CHANNELS && ds->num_classes >= 1;
    for (int s = 0; ok && s < FEED_NUM_SPLITS; s++)
        for (int64_t i = 0; ok && i < ds->split[s].n; i++)
            ok = ds->split[s].labels[i] >= 0 && ds->split[s].labels[i] < ds->num_classes;
    for (int c = 0; ok && c < ds->channels; c++) ok = isfinite(ds->mean[c]) && ds->std[c] > 0;
    if (!ok) {
        fprintf(stderr, "fuzz_dataset_gen: feed_dataset_open returned an inconsistent data set\n");
        abort();
    }
    feed_dataset_close(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_init();
    const char *path = fuzz_tmp_path("dataset_gen.h5");
    fuzz_bytes in = {data, size};
    build_file(&in, path);
    fuzz_catch(open_dataset, (void *)path);
    return 0;
}
