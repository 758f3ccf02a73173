/* dataset_write.c - store a data set as an HDF5 file (layout in include/feed/dataset.h and
 * docs/data.md), atomically: write NAME.tmp, fsync, rename, fsync the folder. If the program
 * ends before the rename (any fatal error), an exit handler removes NAME.tmp.
 *
 * The writer streams (dataset_stream.h): images arrive in slabs, so a converter of a large
 * image folder holds one slab, not the set; feed_dataset_write() streams an in-memory set. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/dataset.h"
#include "feed/version_gen.h"
#include "dataset_stream.h"

enum { CHUNK_IMAGES = 256, SLAB_IMAGES = 4096, DEFLATE_LEVEL = 4 };

/* ---- the temporary file that must not survive a failure ---- */

static char *g_pending_tmp = NULL;

static void remove_pending_tmp(void) {
    if (g_pending_tmp) unlink(g_pending_tmp);
}

static void set_pending_tmp(const char *path) {
    static int registered = 0;
    if (!registered) {
        atexit(remove_pending_tmp);
        registered = 1;
    }
    free(g_pending_tmp);
    g_pending_tmp = path ? feed_xstrdup(path) : NULL;
}

/* ---- attributes ---- */

static hid_t utf8_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    CHECK_H5(t, "HDF5 is broken", "H5Tcopy");
    CHECK_H5(H5Tset_size(t, H5T_VARIABLE), "", "string type");
    CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8), "", "string type");
    return t;
}

/* rank 0: scalar attribute; rank 1: n values. */
static void write_attr(hid_t loc, const char *name, hid_t type, int rank, hsize_t n, const void *v) {
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    CHECK_H5(space, "", "dataspace of attribute %s", name);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(attr, "is the disk full?", "attribute %s", name);
    CHECK_H5(H5Awrite(attr, type, v), "is the disk full?", "attribute %s", name);
    CHECK_H5(H5Aclose(attr), "", "attribute %s", name);
    CHECK_H5(H5Sclose(space), "", "attribute %s", name);
}

/* Everything but mean/std, which the stream knows only at its end. */
static void write_root_attributes(hid_t file, const feed_dataset *ds) {
    hid_t str = utf8_string_type();
    const char *format = FEED_DATASET_FORMAT, *created = "feed_convert " FEED_VERSION " (" FEED_GIT_ID ")";
    const int32_t version = FEED_DATASET_FORMAT_VERSION, k = ds->num_classes;
    write_attr(file, "format", str, 0, 1, &format);
    write_attr(file, "format_version", H5T_NATIVE_INT32, 0, 1, &version);
    write_attr(file, "name", str, 0, 1, &ds->name);
    write_attr(file, "num_classes", H5T_NATIVE_INT32, 0, 1, &k);
    write_attr(file, "class_names", str, 1, (hsize_t)k, ds->class_names);
    if (ds->num_sources > 0) {
        write_attr(file, "source_files", str, 1, (hsize_t)ds->num_sources, ds->source_files);
        write_attr(file, "source_sha256", str, 1, (hsize_t)ds->num_sources, ds->source_sha256);
    }
    write_attr(file, "created_by", str, 0, 1, &created);
    CHECK_H5(H5Tclose(str), "", "string type");
}

/* ---- arrays ---- */

/* A chunked, deflate-compressed dataset of rank `rank` and shape dims. */
static hid_t create_array(hid_t group, const char *name, hid_t type, int rank, const hsize_t *dims) {
    hsize_t chunk[4];
    for (int d = 0; d < rank; d++) chunk[d] = dims[d];
    chunk[0] = dims[0] < CHUNK_IMAGES ? dims[0] : CHUNK_IMAGES;
    if (rank == 1) chunk[0] = dims[0] < 65536 ? dims[0] : 65536;
    /* extendible along the images, so a stream that skipped unreadable images can shrink it */
    hsize_t maxdims[4];
    for (int d = 0; d < rank; d++) maxdims[d] = d == 0 ? H5S_UNLIMITED : dims[d];
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    CHECK_H5(space, "", "dataspace of %s", name);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    CHECK_H5(dcpl, "", "dataset properties of %s", name);
    CHECK_H5(H5Pset_chunk(dcpl, rank, chunk), "", "chunking of %s", name);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0)
        CHECK_H5(H5Pset_deflate(dcpl, DEFLATE_LEVEL), "", "compression of %s", name);
    hid_t dset = H5Dcreate2(group, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK_H5(dset, "is the disk full or the folder read-only?", "creating dataset %s", name);
    CHECK_H5(H5Pclose(dcpl), "", "%s", name);
    CHECK_H5(H5Sclose(space), "", "%s", name);
    return dset;
}

/* Writes rows [first, first + count) of a dataset whose first dimension indexes images. */
static void write_rows(hid_t dset, hid_t mem_type, int64_t first, int64_t count, const void *values,
                       const char *what) {
    hid_t file_space = H5Dget_space(dset);
    CHECK_H5(file_space, "", "%s", what);
    hsize_t dims[4], start[4] = {0, 0, 0, 0};
    int rank = H5Sget_simple_extent_dims(file_space, dims, NULL);
    CHECK_H5(rank, "", "%s", what);
    start[0] = (hsize_t)first;
    dims[0] = (hsize_t)count;
    CHECK_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, dims, NULL), "", "%s", what);
    hid_t mem_space = H5Screate_simple(rank, dims, NULL);
    CHECK_H5(mem_space, "", "%s", what);
    CHECK_H5(H5Dwrite(dset, mem_type, mem_space, file_space, H5P_DEFAULT, values), "is the disk full?",
             "writing %s", what);
    CHECK_H5(H5Sclose(mem_space), "", "%s", what);
    CHECK_H5(H5Sclose(file_space), "", "%s", what);
}

/* ---- durability ---- */

static void fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    CHECK_SYS(fd, "is the file system writable?", "open '%s'", path);
    CHECK_SYS(fsync(fd), "is the disk full?", "fsync '%s'", path);
    CHECK_SYS(close(fd), "", "close '%s'", path);
}

static void fsync_parent_dir(const char *path) {
    char *dir = feed_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) slash[1] = 0;
    else *slash = 0;
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
}

static void refuse_existing(const char *path) {
    FEED_INPUT_ERROR("pass --force to replace it, or choose another name", "'%s' already exists", path);
}

/* Move tmp to path: rename when overwriting, else link() which fails if path appeared. */
static void publish(const char *tmp, const char *path, bool overwrite) {
    if (!overwrite) {
        if (link(tmp, path) == 0) {
            CHECK_SYS(unlink(tmp), "", "unlink '%s'", tmp);
            return;
        }
        if (errno == EEXIST) refuse_existing(path);
        if (access(path, F_OK) == 0) refuse_existing(path); /* no hard links here: check + rename */
    }
    CHECK_SYS(rename(tmp, path), "is the destination on the same file system?", "rename '%s' -> '%s'",
              tmp, path);
}

/* ---- the stream ---- */

struct feed_dataset_stream {
    char *path, *tmp;
    bool overwrite, progress;
    hid_t file, str_type;
    int64_t n[FEED_NUM_SPLITS], written[FEED_NUM_SPLITS];
    hid_t images[FEED_NUM_SPLITS], labels[FEED_NUM_SPLITS], paths[FEED_NUM_SPLITS];
    int64_t image_bytes;
    feed_pixel_hist train_pixels; /* mean/std of the training split */
    int64_t last_line_s;          /* CLOCK_MONOTONIC second of the last progress line (logs) */
};

static void create_split(feed_dataset_stream *s, const feed_dataset *meta, feed_split split, bool with_paths) {
    const char *name = feed_split_name(split);
    hid_t group = H5Gcreate2(s->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(group, "", "creating group /%s", name);
    hsize_t dims[4] = {(hsize_t)s->n[split], (hsize_t)meta->height, (hsize_t)meta->width, (hsize_t)meta->channels};
    s->images[split] = create_array(group, "images", H5T_STD_U8LE, 4, dims);
    s->labels[split] = create_array(group, "labels", H5T_STD_I32LE, 1, dims);
    s->paths[split] = with_paths ? create_array(group, "paths", s->str_type, 1, dims) : H5I_INVALID_HID;
    CHECK_H5(H5Gclose(group), "", "/%s", name);
}

/* On a terminal a line redrawn in place; in a log (SLURM) a plain line every 30 s, so short
 * conversions stay quiet there. */
static void show_progress(feed_dataset_stream *s, feed_split split) {
    const int percent = (int)(100 * s->written[split] / s->n[split]);
    if (isatty(STDERR_FILENO)) {
        fprintf(stderr, "\rfeed_convert: writing %s images %3d%%%s", feed_split_name(split), percent,
                s->written[split] == s->n[split] ? "\n" : "");
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - s->last_line_s >= 30) {
        fprintf(stderr, "feed_convert: writing %s images: %lld of %lld (%d%%)\n", feed_split_name(split),
                (long long)s->written[split], (long long)s->n[split], percent);
        s->last_line_s = now.tv_sec;
    }
}

feed_dataset_stream *feed_dataset_stream_open(const feed_dataset *meta, const int64_t n[FEED_NUM_SPLITS],
                                              const char *path, bool overwrite, bool with_paths, bool progress) {
    if (!overwrite && access(path, F_OK) == 0) refuse_existing(path);
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++)
        FEED_CHECK(n[sp] > 0, "both splits need images", "the %s split of %s is empty",
                   feed_split_name((feed_split)sp), meta->name);
    /* A clear message for the common case; HDF5's own would be a stack dump. */
    char *dir = feed_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    const char *folder = slash ? (dir[0] ? dir : "/") : ".";
    if (access(folder, W_OK) != 0)
        FEED_INPUT_ERROR(feed_fmt("create it first: mkdir -p %s", folder),
                         "cannot write into folder '%s' for %s: %s", folder, path, feed_errno_str());
    free(dir);
    feed_dataset_stream *s = feed_xcalloc(1, sizeof *s, "data-set writer");
    s->path = feed_xstrdup(path);
    s->tmp = feed_xstrdup(feed_fmt("%s.tmp", path));
    s->overwrite = overwrite;
    s->progress = progress;
    s->image_bytes = feed_dataset_image_bytes(meta);
    s->train_pixels.channels = meta->channels;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    s->last_line_s = now.tv_sec;
    set_pending_tmp(s->tmp);
    if (progress)
        fprintf(stderr, "feed_convert: writing %s (train %lld, test %lld images of %dx%dx%d)\n", path,
                (long long)n[0], (long long)n[1], meta->height, meta->width, meta->channels);
    s->file = H5Fcreate(s->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(s->file, "is the folder writable?", "creating '%s'", s->tmp);
    s->str_type = utf8_string_type();
    write_root_attributes(s->file, meta);
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++) {
        s->n[sp] = n[sp];
        create_split(s, meta, (feed_split)sp, with_paths);
    }
    return s;
}

void feed_dataset_stream_write(feed_dataset_stream *s, feed_split split, int64_t count, const uint8_t *images,
                               const int32_t *labels, const char *const *paths) {
    const char *name = feed_split_name(split);
    const int64_t first = s->written[split];
    FEED_CHECK(count >= 0 && first + count <= s->n[split], "this is a bug in the converter",
               "%lld more %s images, %lld of %lld written", (long long)count, name, (long long)first,
               (long long)s->n[split]);
    if (count == 0) return;
    write_rows(s->images[split], H5T_NATIVE_UINT8, first, count, images, feed_fmt("/%s/images", name));
    write_rows(s->labels[split], H5T_NATIVE_INT32, first, count, labels, feed_fmt("/%s/labels", name));
    if (s->paths[split] >= 0) {
        FEED_CHECK(paths != NULL, "this is a bug in the converter", "no paths for /%s/paths", name);
        write_rows(s->paths[split], s->str_type, first, count, paths, feed_fmt("/%s/paths", name));
    }
    if (split == FEED_SPLIT_TRAIN) feed_pixel_hist_add(&s->train_pixels, images, (size_t)(count * s->image_bytes));
    s->written[split] += count;
    if (s->progress) show_progress(s, split);
}

void feed_dataset_stream_put_strings(feed_dataset_stream *s, const char *name, const char *const *values, int64_t n) {
    write_attr(s->file, name, s->str_type, 1, (hsize_t)n, values);
}

void feed_dataset_stream_close(feed_dataset_stream *s, const float *mean, const float *std) {
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++) {
        const char *name = feed_split_name((feed_split)sp);
        FEED_CHECK(s->written[sp] > 0, "every split needs images", "no %s images written", name);
        if (s->written[sp] < s->n[sp]) /* the converter skipped some: the arrays end at the last written */
            for (int a = 0; a < 3; a++) {
                hid_t d = a == 0 ? s->images[sp] : a == 1 ? s->labels[sp] : s->paths[sp];
                if (d < 0) continue;
                hsize_t dims[4];
                hid_t space = H5Dget_space(d);
                CHECK_H5(space, "", "/%s", name);
                CHECK_H5(H5Sget_simple_extent_dims(space, dims, NULL), "", "/%s", name);
                CHECK_H5(H5Sclose(space), "", "/%s", name);
                dims[0] = (hsize_t)s->written[sp];
                CHECK_H5(H5Dset_extent(d, dims), "", "shrinking the arrays of /%s", name);
            }
        CHECK_H5(H5Dclose(s->images[sp]), "is the disk full?", "/%s/images", name);
        CHECK_H5(H5Dclose(s->labels[sp]), "is the disk full?", "/%s/labels", name);
        if (s->paths[sp] >= 0) CHECK_H5(H5Dclose(s->paths[sp]), "is the disk full?", "/%s/paths", name);
    }
    float computed_mean[FEED_MAX_CHANNELS], computed_std[FEED_MAX_CHANNELS];
    feed_pixel_hist_stats(&s->train_pixels, computed_mean, computed_std);
    const int C = s->train_pixels.channels;
    if (!mean) mean = computed_mean;
    if (!std) std = computed_std;
    write_attr(s->file, "mean", H5T_NATIVE_FLOAT, 1, (hsize_t)C, mean);
    write_attr(s->file, "std", H5T_NATIVE_FLOAT, 1, (hsize_t)C, std);
    if (s->progress) {
        fprintf(stderr, "feed_convert: mean");
        for (int c = 0; c < C; c++) fprintf(stderr, " %.6f", mean[c]);
        fprintf(stderr, ", std");
        for (int c = 0; c < C; c++) fprintf(stderr, " %.6f", std[c]);
        fputc('\n', stderr);
    }
    CHECK_H5(H5Tclose(s->str_type), "", "string type");
    CHECK_H5(H5Fclose(s->file), "is the disk full?", "closing '%s'", s->tmp);
    fsync_path(s->tmp, O_RDONLY);
    publish(s->tmp, s->path, s->overwrite);
    set_pending_tmp(NULL);
    fsync_parent_dir(s->path);
    if (s->progress) {
        struct stat st;
        long long size = stat(s->path, &st) == 0 ? (long long)st.st_size : -1;
        fprintf(stderr, "feed_convert: wrote %s (%lld bytes)\n", s->path, size);
    }
    free(s->path);
    free(s->tmp);
    free(s);
}

void feed_dataset_write(const feed_dataset *ds, const char *path, bool overwrite, bool progress) {
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++) {
        int64_t bad = feed_dataset_find_bad_label(ds, (feed_split)sp);
        FEED_CHECK(bad < 0, "labels must lie in [0, num_classes)", "%s label %lld of %s is %d",
                   feed_split_name((feed_split)sp), (long long)bad, ds->name,
                   bad < 0 ? 0 : ds->split[sp].labels[bad]);
    }
    const int64_t n[FEED_NUM_SPLITS] = {ds->split[0].n, ds->split[1].n};
    feed_dataset_stream *s = feed_dataset_stream_open(ds, n, path, overwrite, false, progress);
    for (int sp = 0; sp < FEED_NUM_SPLITS; sp++)
        for (int64_t first = 0; first < n[sp]; first += SLAB_IMAGES) {
            int64_t count = n[sp] - first < SLAB_IMAGES ? n[sp] - first : SLAB_IMAGES;
            feed_dataset_stream_write(s, (feed_split)sp, count, feed_dataset_image(ds, (feed_split)sp, first),
                                      ds->split[sp].labels + first, NULL);
        }
    feed_dataset_stream_close(s, ds->mean, ds->std); /* as they are in ds */
}
