/* dataset_write.c - store a feed_dataset as an HDF5 file (layout in include/feed/dataset.h and
 * docs/data.md), atomically: write NAME.tmp, fsync, rename, fsync the folder. If the program
 * ends before the rename (any fatal error), an exit handler removes NAME.tmp. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/dataset.h"
#include "feed/version_gen.h"

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

static void write_root_attributes(hid_t file, const feed_dataset *ds) {
    hid_t str = utf8_string_type();
    const char *format = FEED_DATASET_FORMAT, *created = "feed_convert " FEED_VERSION " (" FEED_GIT_ID ")";
    const int32_t version = FEED_DATASET_FORMAT_VERSION, k = ds->num_classes;
    write_attr(file, "format", str, 0, 1, &format);
    write_attr(file, "format_version", H5T_NATIVE_INT32, 0, 1, &version);
    write_attr(file, "name", str, 0, 1, &ds->name);
    write_attr(file, "num_classes", H5T_NATIVE_INT32, 0, 1, &k);
    write_attr(file, "class_names", str, 1, (hsize_t)k, ds->class_names);
    write_attr(file, "mean", H5T_NATIVE_FLOAT, 1, (hsize_t)ds->channels, ds->mean);
    write_attr(file, "std", H5T_NATIVE_FLOAT, 1, (hsize_t)ds->channels, ds->std);
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
    hid_t space = H5Screate_simple(rank, dims, NULL);
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

/* Write images in slabs of SLAB_IMAGES so the user sees progress on a terminal. */
static void write_images(hid_t group, const feed_dataset *ds, feed_split split, bool progress) {
    const feed_split_data *s = &ds->split[split];
    hsize_t dims[4] = {(hsize_t)s->n, (hsize_t)ds->height, (hsize_t)ds->width, (hsize_t)ds->channels};
    hid_t dset = create_array(group, "images", H5T_STD_U8LE, 4, dims);
    hid_t file_space = H5Dget_space(dset);
    CHECK_H5(file_space, "", "%s/images", feed_split_name(split));
    const bool tty = progress && isatty(STDERR_FILENO);
    for (int64_t first = 0; first < s->n; first += SLAB_IMAGES) {
        hsize_t start[4] = {(hsize_t)first, 0, 0, 0};
        hsize_t count[4] = {(hsize_t)(s->n - first < SLAB_IMAGES ? s->n - first : SLAB_IMAGES),
                            dims[1], dims[2], dims[3]};
        CHECK_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL), "",
                 "%s/images", feed_split_name(split));
        hid_t mem_space = H5Screate_simple(4, count, NULL);
        CHECK_H5(mem_space, "", "%s/images", feed_split_name(split));
        CHECK_H5(H5Dwrite(dset, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT,
                          feed_dataset_image(ds, split, first)),
                 "is the disk full?", "writing %s/images", feed_split_name(split));
        CHECK_H5(H5Sclose(mem_space), "", "%s/images", feed_split_name(split));
        if (tty)
            fprintf(stderr, "\rfeed_convert: writing %s images %3d%%", feed_split_name(split),
                    (int)(100 * (first + (int64_t)count[0]) / s->n));
    }
    if (tty) fputc('\n', stderr);
    CHECK_H5(H5Sclose(file_space), "", "%s/images", feed_split_name(split));
    CHECK_H5(H5Dclose(dset), "is the disk full?", "%s/images", feed_split_name(split));
}

static void write_split(hid_t file, const feed_dataset *ds, feed_split split, bool progress) {
    const char *name = feed_split_name(split);
    hid_t group = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(group, "", "creating group /%s", name);
    write_images(group, ds, split, progress);
    hsize_t n = (hsize_t)ds->split[split].n;
    hid_t labels = create_array(group, "labels", H5T_STD_I32LE, 1, &n);
    CHECK_H5(H5Dwrite(labels, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->split[split].labels),
             "is the disk full?", "writing /%s/labels", name);
    CHECK_H5(H5Dclose(labels), "is the disk full?", "/%s/labels", name);
    CHECK_H5(H5Gclose(group), "", "/%s", name);
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

void feed_dataset_write(const feed_dataset *ds, const char *path, bool overwrite, bool progress) {
    if (!overwrite && access(path, F_OK) == 0) refuse_existing(path);
    for (int s = 0; s < FEED_NUM_SPLITS; s++) {
        FEED_CHECK(ds->split[s].n > 0, "both splits need images", "the %s split of %s is empty",
                   feed_split_name((feed_split)s), ds->name);
        int64_t bad = feed_dataset_find_bad_label(ds, (feed_split)s);
        FEED_CHECK(bad < 0, "labels must lie in [0, num_classes)", "%s label %lld of %s is %d",
                   feed_split_name((feed_split)s), (long long)bad, ds->name,
                   bad < 0 ? 0 : ds->split[s].labels[bad]);
    }
    /* A clear message for the common case; HDF5's own would be a stack dump. */
    char *dir = feed_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    const char *folder = slash ? (dir[0] ? dir : "/") : ".";
    if (access(folder, W_OK) != 0)
        FEED_INPUT_ERROR(feed_fmt("create it first: mkdir -p %s", folder),
                         "cannot write into folder '%s' for %s: %s", folder, path, feed_errno_str());
    free(dir);
    char *tmp = feed_xstrdup(feed_fmt("%s.tmp", path));
    set_pending_tmp(tmp);
    if (progress)
        fprintf(stderr, "feed_convert: writing %s (train %lld, test %lld images of %dx%dx%d)\n", path,
                (long long)ds->split[0].n, (long long)ds->split[1].n, ds->height, ds->width,
                ds->channels);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(file, "is the folder writable?", "creating '%s'", tmp);
    write_root_attributes(file, ds);
    write_split(file, ds, FEED_SPLIT_TRAIN, progress);
    write_split(file, ds, FEED_SPLIT_TEST, progress);
    CHECK_H5(H5Fclose(file), "is the disk full?", "closing '%s'", tmp);
    fsync_path(tmp, O_RDONLY);
    publish(tmp, path, overwrite);
    set_pending_tmp(NULL);
    fsync_parent_dir(path);
    free(tmp);
    if (progress) {
        struct stat st;
        long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
        fprintf(stderr, "feed_convert: wrote %s (%lld bytes)\n", path, size);
    }
}
