/* checkpoint_write.c - writing a checkpoint atomically.
 *
 * HDF5 builds the file in memory (core driver, no backing store); commit takes the finished
 * image (root attribute complete=1 written last), writes it to NAME.tmp with plain write(),
 * fsyncs, renames it to NAME and fsyncs the folder. All disk I/O is ours, so a full disk is a
 * clean error (HDF5 1.10 crashes at exit after a failed write to a file it manages), and NAME
 * is only ever replaced by a complete file. Any failure removes NAME.tmp before ending the job,
 * so NAME keeps its old content. Memory: the file's size, twice, during commit.
 */
#include "atomic_file.h"
#include "checkpoint_internal.h"
#include "h5_util.h"

#include "feed/check.h"
#include "feed/finite.h"
#include "feed/version_gen.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct feed_ckpt_writer {
    char *path;     /* final name */
    char *tmp_path; /* NAME.tmp, created at begin (fails early if the folder is not writable) */
    int tmp_fd;     /* open while the checkpoint is built, -1 once written */
    bool renamed;   /* tmp_path became path (only the folder fsync may be missing) */
    hid_t file;     /* in memory */
};

char *feed_ckpt_tmp_path(const char *path) {
    size_t n = strlen(path);
    char *tmp = feed_xmalloc(n + 5, "checkpoint temp path");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    return tmp;
}

static void writer_free(feed_ckpt_writer *w) {
    free(w->path);
    free(w->tmp_path);
    free(w);
}

/* Ends the job after removing the half-written temp file: "cannot write checkpoint X: what
 * (HDF5: detail)". The HDF5 detail is taken before anything else touches the error stack. */
#define WRITER_FAIL(w, hint, ...) writer_fail(w, __FILE__, __LINE__, hint, feed_fmt(__VA_ARGS__))
static noreturn void writer_fail(feed_ckpt_writer *w, const char *file, int line, const char *hint,
                                 const char *what) {
    char detail[600] = "";
    const char *h5 = h5_error_detail();
    if (*h5) snprintf(detail, sizeof detail, " (HDF5: %s)", h5);
    if (w->file >= 0) H5Fclose(w->file); /* in memory: nothing to flush; closes everything in it */
    w->file = -1;
    if (w->tmp_fd >= 0) close(w->tmp_fd);
    const char *outcome;
    if (w->renamed)
        outcome = feed_fmt("'%s' has the new content but may not survive a crash", w->path);
    else if (unlink(w->tmp_path) == 0)
        outcome = feed_fmt("removed '%s', '%s' is unchanged", w->tmp_path, w->path);
    else
        outcome = feed_fmt("'%s' is unchanged", w->path);
    char message[2048];
    snprintf(message, sizeof message, "cannot write checkpoint '%s': %s%s; %s", w->path, what, detail, outcome);
    writer_free(w);
    feed_fatal(FEED_EXIT_RUNTIME, file, line, hint, "%s", message);
}

#define HINT_DISK "is the disk full, over quota, or the folder not writable?"
/* The in-memory file grows in steps of this many bytes. */
#define CORE_INCREMENT (4u << 20)
#define HINT_CALLER "a bug in the code that writes the checkpoint (the caller of feed_ckpt_put)"

static bool is_reserved_attr(const char *name) {
    for (const char *const *r = feed_ckpt_reserved_attrs; *r; r++)
        if (strcmp(*r, name) == 0) return true;
    return false;
}

static void write_root_attrs(feed_ckpt_writer *w, const feed_ckpt_meta *m) {
    char created_at[32] = "unknown";
    time_t now = time(NULL);
    struct tm utc;
    if (gmtime_r(&now, &utc)) strftime(created_at, sizeof created_at, "%Y-%m-%dT%H:%M:%SZ", &utc);
    const char *created_by = "feed_mpi " FEED_VERSION " (git " FEED_GIT_ID ")";

    struct { const char *name; const char *value; } strs[] = {
        {"format", FEED_CKPT_FORMAT}, {"arch", m->arch}, {"dataset", m->dataset ? m->dataset : ""},
        {"config_ini", m->config_ini ? m->config_ini : ""}, {"created_by", created_by},
        {"created_at", created_at},
    };
    struct { const char *name; int64_t value; } ints[] = {
        {"format_version", FEED_CKPT_FORMAT_VERSION}, {"num_classes", m->num_classes},
        {"in_channels", m->in_channels}, {"epoch", m->epoch}, {"step", m->step}, {"seed", m->seed},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (h5_attr_write_i64(w->file, ints[i].name, ints[i].value) < 0)
            WRITER_FAIL(w, HINT_DISK, "root attribute '%s'", ints[i].name);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (h5_attr_write_str(w->file, strs[i].name, strs[i].value) < 0)
            WRITER_FAIL(w, HINT_DISK, "root attribute '%s'", strs[i].name);
}

feed_ckpt_writer *feed_ckpt_begin(const char *path, const feed_ckpt_meta *meta) {
    FEED_CHECK(path && *path, HINT_CALLER, "feed_ckpt_begin: empty checkpoint path");
    FEED_CHECK(meta && meta->arch && *meta->arch, HINT_CALLER,
               "feed_ckpt_begin('%s'): meta.arch must name the architecture", path);
    feed_ckpt_writer *w = feed_xcalloc(1, sizeof *w, "checkpoint writer");
    w->path = feed_xstrdup(path);
    w->tmp_path = feed_ckpt_tmp_path(path);
    w->file = -1;
    w->tmp_fd = -1;

    /* A killed writer may have left tmp_path: start from scratch (unlink rather than truncate,
     * so a process still holding the old one open cannot interfere). */
    const char *failed = "";
    if (unlink(w->tmp_path) != 0 && errno != ENOENT)
        WRITER_FAIL(w, HINT_DISK, "cannot remove the stale '%s': %s", w->tmp_path, feed_errno_str());
    w->tmp_fd = feed_io_create_file(w->tmp_path, &failed);
    if (w->tmp_fd < 0)
        WRITER_FAIL(w, "does the folder exist and is it writable?", "%s: %s", failed, feed_errno_str());

    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    hid_t fcpl = h5_fcpl_create(), fapl = h5_fapl_create();
    if (fcpl >= 0 && fapl >= 0 && H5Pset_fapl_core(fapl, CORE_INCREMENT, 0) >= 0)
        w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, fcpl, fapl); /* the name is only a label */
    h5_close_keep_error(H5Pclose, fcpl);
    h5_close_keep_error(H5Pclose, fapl);
    if (w->file < 0) WRITER_FAIL(w, "out of memory?", "cannot create the HDF5 file in memory");
    write_root_attrs(w, meta);
    h5_quiet_end(&quiet);
    return w;
}

/* Opens the parent group of object path (creating it) and returns the leaf name in *leaf. */
static hid_t open_parent(feed_ckpt_writer *w, char *path, const char **leaf) {
    char *slash = strrchr(path, '/');
    if (!slash) {
        *leaf = path;
        return h5_group_ensure(w->file, "");
    }
    *slash = 0;
    hid_t parent = h5_group_ensure(w->file, path);
    *slash = '/';
    *leaf = slash + 1;
    return parent;
}

void feed_ckpt_put(feed_ckpt_writer *w, const char *group, const char *key, feed_ckpt_shape shape,
                   const void *data) {
    const char *why;
    char *path = feed_ckpt_object_path(group, key, &why);
    if (!path) WRITER_FAIL(w, HINT_CALLER, "bad tensor name '%s' + '%s': %s", group ? group : "", key ? key : "", why);
    char shape_text[300];
    if (!feed_ckpt_shape_valid(&shape))
        WRITER_FAIL(w, HINT_CALLER, "tensor '%s' has an invalid dtype or shape (rank %d, dims %s)", path,
                    shape.rank, feed_ckpt_shape_str(&shape, shape_text, sizeof shape_text));
    if (!data && feed_ckpt_shape_numel(&shape) > 0)
        WRITER_FAIL(w, HINT_CALLER, "tensor '%s': data is NULL", path);
    if (shape.dtype == FEED_CKPT_F32) { /* a model with Inf or NaN is never saved as if it were one */
        size_t n = (size_t)feed_ckpt_shape_numel(&shape), at = feed_first_nonfinite(data, n);
        if (at < n)
            WRITER_FAIL(w, "the values diverged: lower train.lr or the distillation weights",
                        "tensor '%s' holds %g at element %zu", path, ((const float *)data)[at], at);
    }

    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    const char *leaf;
    hid_t parent = open_parent(w, path, &leaf);
    if (parent < 0) WRITER_FAIL(w, "is a tensor name also used as a group name?", "cannot create the group of '%s'", path);
    htri_t exists = H5Lexists(parent, leaf, H5P_DEFAULT);
    if (exists != 0) WRITER_FAIL(w, HINT_CALLER, "tensor '%s' is written twice (or is also a group)", path);

    hid_t dataset = h5_dataset_write(parent, leaf, &shape, data);
    if (dataset < 0) WRITER_FAIL(w, HINT_DISK, "writing tensor '%s' %s", path,
                                 feed_ckpt_shape_dtype_str(&shape, shape_text, sizeof shape_text));
    size_t bytes = (size_t)feed_ckpt_shape_numel(&shape) * feed_ckpt_dtype_size(shape.dtype);
    if (h5_attr_write_u32(dataset, FEED_CKPT_CRC_ATTR, feed_ckpt_crc32(data, bytes)) < 0)
        WRITER_FAIL(w, HINT_DISK, "writing the crc32 attribute of '%s'", path);
    H5Dclose(dataset);
    H5Gclose(parent);
    h5_quiet_end(&quiet);
    free(path);
}

void feed_ckpt_put_i64(feed_ckpt_writer *w, const char *group, const char *key, int64_t value) {
    feed_ckpt_put(w, group, key, (feed_ckpt_shape){FEED_CKPT_I64, 0, {0}}, &value);
}

void feed_ckpt_put_f64(feed_ckpt_writer *w, const char *group, const char *key, double value) {
    feed_ckpt_put(w, group, key, (feed_ckpt_shape){FEED_CKPT_F64, 0, {0}}, &value);
}

/* Opens the object that gets an extra attribute: root for NULL or "". */
static hid_t open_attr_target(feed_ckpt_writer *w, const char *object, const char *name) {
    if (is_reserved_attr(name))
        WRITER_FAIL(w, "pick another name: the format defines this one", "attribute name '%s' is reserved", name);
    if (!object || !*object) return H5Oopen(w->file, "/", H5P_DEFAULT);
    const char *why;
    char *path = feed_ckpt_object_path(object, NULL, &why);
    if (!path) WRITER_FAIL(w, HINT_CALLER, "bad object name '%s' for attribute '%s': %s", object, name, why);
    if (h5_path_exists(w->file, path) <= 0)
        WRITER_FAIL(w, "write the tensor or group before its attributes",
                    "attribute '%s' is for '%s', which is not in the checkpoint", name, path);
    hid_t obj = H5Oopen(w->file, path, H5P_DEFAULT);
    free(path);
    return obj;
}

#define PUT_ATTR(w, object, name, write_call)                                                     \
    do {                                                                                          \
        h5_quiet quiet_;                                                                          \
        h5_quiet_begin(&quiet_);                                                                  \
        hid_t obj = open_attr_target(w, object, name);                                            \
        if (obj < 0 || (write_call) < 0)                                                          \
            WRITER_FAIL(w, HINT_DISK, "writing attribute '%s' of '%s'", name,                     \
                        object && *object ? object : "/");                                        \
        H5Oclose(obj);                                                                            \
        h5_quiet_end(&quiet_);                                                                    \
    } while (0)

void feed_ckpt_put_attr_str(feed_ckpt_writer *w, const char *object, const char *name, const char *value) {
    PUT_ATTR(w, object, name, h5_attr_write_str(obj, name, value ? value : ""));
}

void feed_ckpt_put_attr_i64(feed_ckpt_writer *w, const char *object, const char *name, int64_t value) {
    PUT_ATTR(w, object, name, h5_attr_write_i64(obj, name, value));
}

void feed_ckpt_put_attr_f64(feed_ckpt_writer *w, const char *object, const char *name, double value) {
    PUT_ATTR(w, object, name, h5_attr_write_f64(obj, name, value));
}

void feed_ckpt_commit(feed_ckpt_writer *w) {
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    if (h5_attr_write_i64(w->file, FEED_CKPT_COMPLETE_ATTR, 1) < 0)
        WRITER_FAIL(w, HINT_DISK, "writing the root attribute 'complete'");
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) WRITER_FAIL(w, "out of memory?", "finishing the HDF5 file");
    ssize_t size = H5Fget_file_image(w->file, NULL, 0);
    if (size <= 0) WRITER_FAIL(w, "out of memory?", "getting the size of the HDF5 file image");
    void *image = feed_xmalloc((size_t)size, feed_fmt("the image of checkpoint '%s'", w->path));
    if (H5Fget_file_image(w->file, image, (size_t)size) != size)
        WRITER_FAIL(w, "out of memory?", "copying the HDF5 file image");
    if (h5_image_fix_superblock(image, (size_t)size) != 0)
        WRITER_FAIL(w, "a bug in feed_mpi's HDF5 handling", "the HDF5 file image has no superblock");
    herr_t closed = H5Fclose(w->file);
    w->file = -1;
    if (closed < 0) WRITER_FAIL(w, "out of memory?", "closing the HDF5 file in memory");
    h5_quiet_end(&quiet);

    const char *failed = "";
    int fd = w->tmp_fd;
    w->tmp_fd = -1; /* feed_io_write_sync_close closes it, whatever happens */
    int st = feed_io_write_sync_close(fd, image, (size_t)size, w->tmp_path, &failed);
    free(image);
    if (st == 0 && rename(w->tmp_path, w->path) != 0)
        st = -1, failed = feed_fmt("rename('%s' -> '%s')", w->tmp_path, w->path);
    if (st == 0) {
        w->renamed = true;
        st = feed_io_fsync_parent_dir(w->path, &failed);
    }
    if (st != 0) WRITER_FAIL(w, HINT_DISK, "%s: %s", failed, feed_errno_str());
    writer_free(w);
}

void feed_ckpt_abandon(feed_ckpt_writer *w) {
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    if (w->file >= 0) H5Fclose(w->file);
    h5_quiet_end(&quiet);
    if (w->tmp_fd >= 0) close(w->tmp_fd);
    if (unlink(w->tmp_path) != 0 && errno != ENOENT)
        FEED_FAIL(HINT_DISK, "cannot remove the unfinished checkpoint '%s': %s", w->tmp_path, feed_errno_str());
    writer_free(w);
}
