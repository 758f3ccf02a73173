/* dataset_open.c - read and validate a data-set file (layout in include/feed/dataset.h).
 * Every problem with the file is a user-input error (exit 2) naming the file and object. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"
#include "../io/h5_util.h" /* h5_error_detail, h5_dataset_fully_stored, h5_bounded_by_storage */
#include "feed/dataset.h"

#define LAYOUT_HINT "make data-set files with feed_convert; docs/data.md describes the layout"

/* The file being opened, for messages. */
typedef struct h5_reader {
    const char *path;
    hid_t file;
} h5_reader;

static void require_link(const h5_reader *r, const char *object, const char *kind) {
    /* Check each level ("/train", then "/train/images") so H5Lexists never walks through a
     * missing group. */
    char partial[256];
    for (const char *p = strchr(object + 1, '/');; p = strchr(p + 1, '/')) {
        size_t len = p ? (size_t)(p - object) : strlen(object);
        snprintf(partial, sizeof partial, "%.*s", (int)len, object);
        if (H5Lexists(r->file, partial, H5P_DEFAULT) <= 0)
            FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': missing %s %s", r->path, p ? "group" : kind, partial);
        if (!p) break;
    }
}

static hid_t open_attr(const h5_reader *r, const char *name) {
    if (H5Aexists(r->file, name) <= 0)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': missing root attribute '%s'", r->path, name);
    hid_t a = H5Aopen(r->file, name, H5P_DEFAULT);
    CHECK_H5(a, LAYOUT_HINT, "'%s': attribute %s", r->path, name);
    return a;
}

/* Number of elements of an attribute (1 for a scalar). */
static hssize_t attr_count(const h5_reader *r, hid_t a, const char *name) {
    hid_t space = H5Aget_space(a);
    CHECK_H5(space, "", "'%s': attribute %s", r->path, name);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    CHECK_H5(n, "", "'%s': attribute %s", r->path, name);
    CHECK_H5(H5Sclose(space), "", "attribute %s", name);
    return n;
}

/* A string attribute (scalar or 1-D, variable or fixed length) as n malloc'ed strings. */
static char **read_strings(const h5_reader *r, const char *name, int *n_out) {
    hid_t a = open_attr(r, name);
    hid_t ftype = H5Aget_type(a);
    CHECK_H5(ftype, "", "'%s': attribute %s", r->path, name);
    if (H5Tget_class(ftype) != H5T_STRING)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': attribute '%s' is not a string", r->path, name);
    int n = (int)attr_count(r, a, name);
    char **out = feed_xcalloc((size_t)n ? (size_t)n : 1, sizeof(char *), "string attribute");
    hid_t mtype = H5Tcopy(ftype);
    CHECK_H5(mtype, "", "attribute %s", name);
    if (H5Tis_variable_str(ftype) > 0) {
        char **raw = feed_xcalloc((size_t)n ? (size_t)n : 1, sizeof(char *), "string attribute");
        CHECK_H5(H5Aread(a, mtype, raw), LAYOUT_HINT, "'%s': reading attribute %s", r->path, name);
        for (int i = 0; i < n; i++) out[i] = feed_xstrdup(raw[i] ? raw[i] : "");
        hid_t space = H5Aget_space(a);
        CHECK_H5(H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw), "", "attribute %s", name);
        H5Sclose(space);
        free(raw);
    } else {
        size_t len = H5Tget_size(ftype);
        char *raw = feed_xcalloc((size_t)n ? (size_t)n : 1, len, "string attribute");
        CHECK_H5(H5Aread(a, mtype, raw), LAYOUT_HINT, "'%s': reading attribute %s", r->path, name);
        for (int i = 0; i < n; i++) {
            out[i] = feed_xcalloc(len + 1, 1, "string");
            memcpy(out[i], raw + (size_t)i * len, len);
        }
        free(raw);
    }
    H5Tclose(mtype);
    H5Tclose(ftype);
    H5Aclose(a);
    *n_out = n;
    return out;
}

static char *read_string(const h5_reader *r, const char *name) {
    int n = 0;
    char **v = read_strings(r, name, &n);
    if (n != 1) FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': attribute '%s' must be one string, has %d", r->path, name, n);
    char *s = v[0];
    free(v);
    return s;
}

/* A numeric attribute with exactly `count` elements, converted to mem_type. */
static void read_numbers(const h5_reader *r, const char *name, hid_t mem_type, int count, void *out) {
    hid_t a = open_attr(r, name);
    hid_t ftype = H5Aget_type(a);
    CHECK_H5(ftype, "", "attribute %s", name);
    H5T_class_t cls = H5Tget_class(ftype);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': attribute '%s' is not a number", r->path, name);
    hssize_t n = attr_count(r, a, name);
    if (n != count)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': attribute '%s' has %lld values, expected %d", r->path,
                         name, (long long)n, count);
    CHECK_H5(H5Aread(a, mem_type, out), LAYOUT_HINT, "'%s': reading attribute %s", r->path, name);
    H5Tclose(ftype);
    H5Aclose(a);
}

/* Open /split/name and check its type class, width and rank; dims receives the shape. */
static hid_t open_array(const h5_reader *r, const char *object, int rank, bool byte_unsigned, hsize_t *dims) {
    require_link(r, object, "dataset");
    H5O_info_t info;
    if (H5Oget_info_by_name(r->file, object, &info, H5P_DEFAULT) < 0)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s cannot be opened (a link to a missing object or file?)", r->path,
                         object);
    if (info.type != H5O_TYPE_DATASET)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s is a %s, not a dataset", r->path, object,
                         info.type == H5O_TYPE_GROUP ? "group" : "named datatype");
    hid_t d = H5Dopen2(r->file, object, H5P_DEFAULT);
    if (d < 0)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s cannot be opened (HDF5: %s)", r->path, object, h5_error_detail());
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    CHECK_H5(type, "", "%s", object);
    CHECK_H5(space, "", "%s", object);
    bool ok_type = H5Tget_class(type) == H5T_INTEGER &&
                   (!byte_unsigned || (H5Tget_size(type) == 1 && H5Tget_sign(type) == H5T_SGN_NONE));
    if (!ok_type)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s must be %s", r->path, object,
                         byte_unsigned ? "uint8" : "an integer array");
    int got = H5Sget_simple_extent_ndims(space);
    if (got != rank)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s has %d dimensions, expected %d%s", r->path, object,
                         got, rank, rank == 4 ? " (N x H x W x C)" : " (N)");
    CHECK_H5(H5Sget_simple_extent_dims(space, dims, NULL), "", "%s", object);
    H5Tclose(type);
    H5Sclose(space);
    return d;
}

/* Sizes read from a file are bounded by what the file stores before they size an allocation
 * (h5_bounded_by_storage): a split is kept in memory by the loader. */
static void check_storage(const h5_reader *r, hid_t d, const char *object, const hsize_t *dims, int rank) {
    /* a file of a few KB could otherwise declare terabytes of never-written chunks (read as
     * zeros) and have us allocate them; feed_convert and h5py write every chunk */
    if (h5_dataset_fully_stored(d) != 1) {
        unsigned long long n = 1;
        for (int i = 0; i < rank && n; i++) n = h5_mul_size(n, dims[i]);
        FEED_INPUT_ERROR("the file is damaged or was not written to the end: convert it again",
                         "'%s': %s declares %llu values but the file does not hold them all", r->path, object, n);
    }
    hid_t type = H5Dget_type(d);
    CHECK_H5(type, "", "%s", object);
    unsigned long long bytes = H5Tget_size(type);
    H5Tclose(type);
    for (int i = 0; i < rank && bytes; i++) bytes = h5_mul_size(bytes, dims[i]);
    char why[200];
    if (h5_bounded_by_storage(d, bytes, why, sizeof why) < 0)
        FEED_INPUT_ERROR(strstr(why, "GiB") ? "use a machine with more memory, or a subset of the data"
                                            : "the file is damaged or was not written to the end: convert it again",
                         "'%s': %s %s", r->path, object, why);
}

static void read_split(const h5_reader *r, feed_dataset *ds, feed_split split) {
    const char *name = feed_split_name(split);
    char img_obj[32], lab_obj[32];
    snprintf(img_obj, sizeof img_obj, "/%s/images", name);
    snprintf(lab_obj, sizeof lab_obj, "/%s/labels", name);
    hsize_t idims[4], ldims[1];
    hid_t images = open_array(r, img_obj, 4, true, idims);
    hid_t labels = open_array(r, lab_obj, 1, false, ldims);
    if (idims[0] == 0 || idims[1] == 0 || idims[2] == 0 || idims[3] == 0 || idims[3] > FEED_MAX_CHANNELS ||
        idims[1] > FEED_MAX_SIDE || idims[2] > FEED_MAX_SIDE)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s has shape %llux%llux%llux%llu (N >= 1, 1 <= H, W <= %d, 1 <= C <= %d)",
                         r->path, img_obj, (unsigned long long)idims[0], (unsigned long long)idims[1],
                         (unsigned long long)idims[2], (unsigned long long)idims[3], FEED_MAX_SIDE, FEED_MAX_CHANNELS);
    if (split == FEED_SPLIT_TRAIN) {
        ds->height = (int)idims[1];
        ds->width = (int)idims[2];
        ds->channels = (int)idims[3];
    } else if (idims[1] != (hsize_t)ds->height || idims[2] != (hsize_t)ds->width ||
               idims[3] != (hsize_t)ds->channels) {
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s images are %llux%llux%llu, training images %dx%dx%d", r->path,
                         img_obj, (unsigned long long)idims[1], (unsigned long long)idims[2],
                         (unsigned long long)idims[3], ds->height, ds->width, ds->channels);
    }
    if (ldims[0] != idims[0])
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s has %llu labels for %llu images", r->path, lab_obj,
                         (unsigned long long)ldims[0], (unsigned long long)idims[0]);
    check_storage(r, images, img_obj, idims, 4);
    check_storage(r, labels, lab_obj, ldims, 1);
    feed_dataset_alloc_split(ds, split, (int64_t)idims[0]);
    if (H5Dread(images, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->split[split].images) < 0)
        FEED_INPUT_ERROR("the file is damaged: convert or copy it again", "'%s': %s cannot be read (HDF5: %s)", r->path,
                         img_obj, h5_error_detail());
    /* read as int64 so that a wider label is reported with its value, not HDF5's clamped one */
    int64_t *wide = feed_xmalloc(sizeof(int64_t) * (idims[0] ? idims[0] : 1), "labels");
    if (H5Dread(labels, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, wide) < 0)
        FEED_INPUT_ERROR("the file is damaged: convert or copy it again", "'%s': %s cannot be read (HDF5: %s)", r->path,
                         lab_obj, h5_error_detail());
    for (hsize_t i = 0; i < idims[0]; i++) {
        if (wide[i] < 0 || wide[i] >= ds->num_classes)
            FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %s[%llu] = %lld is outside [0, num_classes = %d)", r->path, lab_obj,
                             (unsigned long long)i, (long long)wide[i], ds->num_classes);
        ds->split[split].labels[i] = (int32_t)wide[i];
    }
    free(wide);
    H5Dclose(images);
    H5Dclose(labels);
}

feed_dataset *feed_dataset_open(const char *path) {
    if (access(path, R_OK) != 0)
        FEED_INPUT_ERROR("convert the data set with feed_convert first", "cannot read data set '%s': %s",
                         path, strerror(errno));
    /* Our messages replace HDF5's error stack for the checks below. */
    H5E_auto2_t old_func;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (H5Fis_hdf5(path) <= 0) FEED_INPUT_ERROR(LAYOUT_HINT, "'%s' is not an HDF5 file", path);
    h5_reader r = {path, H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)};
    if (r.file < 0) {
        const char *detail = h5_error_detail(); /* e.g. "truncated file: eof = ..." */
        if (strstr(detail, "truncated"))
            FEED_INPUT_ERROR("the file is incomplete (an interrupted copy or conversion?): copy or convert it again",
                             "data set '%s' is truncated (HDF5: %s)", path, detail);
        FEED_INPUT_ERROR("another program may hold it open for writing (HDF5 file locking), or it is damaged",
                         "cannot open HDF5 file '%s'%s%s%s", path, *detail ? " (HDF5: " : "", detail, *detail ? ")" : "");
    }
    if (H5Aexists(r.file, "format") > 0) {
        char *format = read_string(&r, "format");
        if (strcmp(format, FEED_DATASET_FORMAT) != 0)
            FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': format is '%s', expected '%s'", path, format,
                             FEED_DATASET_FORMAT);
        free(format);
        int32_t version = 0;
        read_numbers(&r, "format_version", H5T_NATIVE_INT32, 1, &version);
        if (version < 1 || version > FEED_DATASET_FORMAT_VERSION)
            FEED_INPUT_ERROR("use a newer feed_mpi or convert the data again",
                             "'%s': format_version %d is not supported (this build reads 1..%d)",
                             path, version, FEED_DATASET_FORMAT_VERSION);
    }
    char *name = read_string(&r, "name");
    int32_t k = 0;
    read_numbers(&r, "num_classes", H5T_NATIVE_INT32, 1, &k);
    if (k < 1) FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': num_classes is %d", path, k);
    /* The names come first: their count is what the file really holds, so a corrupt
       num_classes is refused before it sizes anything. */
    int n_names = 0;
    char **names = read_strings(&r, "class_names", &n_names);
    if (n_names != k)
        FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %d class_names for num_classes = %d", path, n_names, k);
    feed_dataset *ds = feed_dataset_new(name, k, 1, 1, 1);
    free(name);
    ds->path = feed_xstrdup(path);
    feed_dataset_set_class_names(ds, (const char *const *)names);
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(names);
    read_split(&r, ds, FEED_SPLIT_TRAIN);
    read_split(&r, ds, FEED_SPLIT_TEST);
    read_numbers(&r, "mean", H5T_NATIVE_FLOAT, ds->channels, ds->mean);
    read_numbers(&r, "std", H5T_NATIVE_FLOAT, ds->channels, ds->std);
    for (int c = 0; c < ds->channels; c++)
        if (!isfinite(ds->mean[c]) || !isfinite(ds->std[c]) || !(ds->std[c] > 0.0f))
            FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': channel %d has mean %g, std %g (both finite, std > 0)",
                             path, c, ds->mean[c], ds->std[c]);
    if (H5Aexists(r.file, "source_files") > 0 && H5Aexists(r.file, "source_sha256") > 0) {
        int nf = 0, nh = 0;
        ds->source_files = read_strings(&r, "source_files", &nf);
        ds->source_sha256 = read_strings(&r, "source_sha256", &nh);
        if (nf != nh) FEED_INPUT_ERROR(LAYOUT_HINT, "'%s': %d source_files but %d source_sha256", path, nf, nh);
        ds->num_sources = nf;
    }
    CHECK_H5(H5Fclose(r.file), "", "closing '%s'", path);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    return ds;
}
