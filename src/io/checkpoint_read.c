/* checkpoint_read.c - opening a checkpoint read-only and checking it before use: HDF5 can open
 * it, it says format "feed_mpi" with a version we read, complete=1, every root attribute is
 * there, and every dataset's CRC32 matches its values. Then tensors are read by name into
 * caller buffers with their dtype and shape checked. */
#include "checkpoint_internal.h"
#include "h5_util.h"

#include "feed/check.h"
#include "feed/finite.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HINT_OLDER "use an older checkpoint (a run resumes from the newest one that verifies)"
#define HINT_DAMAGED "the file changed after it was written (disk, copy, transfer); " HINT_OLDER
#define HINT_LIST "tools/ckpt_info.py lists a checkpoint's tensors and attributes"

/* Ends the job with exit code 2 and the error's text. */
static noreturn void input_error(const feed_ckpt_error *err, const char *file, int line) {
    feed_fatal(FEED_EXIT_USAGE, file, line, err->hint, "%s", err->message);
}

/* ---- opening ------------------------------------------------------------------------------ */

static int open_hdf5(feed_ckpt *c, feed_ckpt_error *err) {
    struct stat st;
    if (stat(c->path, &st) != 0)
        return feed_ckpt_set_error(err, "check the path (a run folder holds <prefix>_e<epoch>_s<step>.h5 files)",
                                   "cannot open checkpoint '%s': %s", c->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return feed_ckpt_set_error(err, "give the path of an .h5 file", "checkpoint '%s' is not a regular file", c->path);
    hid_t fapl = h5_fapl_create();
    if (fapl >= 0) c->file = H5Fopen(c->path, H5F_ACC_RDONLY, fapl);
    h5_close_keep_error(H5Pclose, fapl);
    if (c->file >= 0) return 0;
    char detail[512];
    snprintf(detail, sizeof detail, "%s", h5_error_detail());
    if (H5Fis_hdf5(c->path) == 0)
        return feed_ckpt_set_error(err, "was it copied completely? feed_mpi checkpoints are HDF5 files (.h5)",
                                   "checkpoint '%s' is not an HDF5 file (%lld bytes, no HDF5 signature)", c->path,
                                   (long long)st.st_size);
    return feed_ckpt_set_error(err, "the file is truncated or damaged (an interrupted copy, a full disk?); " HINT_OLDER,
                               "checkpoint '%s' (%lld bytes) cannot be opened by HDF5: %s", c->path,
                               (long long)st.st_size, detail);
}

static int read_format(feed_ckpt *c, feed_ckpt_error *err) {
    char *format = NULL;
    int found = h5_attr_read_str(c->file, "format", &format);
    if (found <= 0 || strcmp(format, FEED_CKPT_FORMAT) != 0) {
        feed_ckpt_set_error(err, "give a checkpoint written by feed_mpi (or by a converter that follows docs/checkpoint.md)",
                            "'%s' is an HDF5 file but not a feed_mpi checkpoint: root attribute 'format' is %s%s%s "
                            "(expected '" FEED_CKPT_FORMAT "')",
                            c->path, found > 0 ? "'" : "", found > 0 ? format : found == 0 ? "missing" : "not a string",
                            found > 0 ? "'" : "");
        free(format);
        return -1;
    }
    free(format);
    found = h5_attr_read_i64(c->file, "format_version", &c->format_version);
    if (found <= 0)
        return feed_ckpt_set_error(err, HINT_LIST, "checkpoint '%s' has no integer root attribute 'format_version'", c->path);
    if (c->format_version != FEED_CKPT_FORMAT_VERSION)
        return feed_ckpt_set_error(err,
                                   c->format_version > FEED_CKPT_FORMAT_VERSION ? "use a newer feed_mpi to read it"
                                                                                 : "convert it with the feed_mpi that wrote it",
                                   "checkpoint '%s' has format_version %" PRId64 "; this feed_mpi reads version %d",
                                   c->path, c->format_version, FEED_CKPT_FORMAT_VERSION);
    int64_t complete = 0;
    found = h5_attr_read_i64(c->file, FEED_CKPT_COMPLETE_ATTR, &complete);
    if (found <= 0 || complete != 1)
        return feed_ckpt_set_error(err, "its writer stopped before finishing it; use an older checkpoint",
                                   "checkpoint '%s' is incomplete: root attribute 'complete' is %s", c->path,
                                   found <= 0 ? "missing" : "not 1");
    return 0;
}

static int read_meta(feed_ckpt *c, feed_ckpt_error *err) {
    struct { const char *name; const char **dst; } strs[] = {
        {"arch", &c->meta.arch}, {"dataset", &c->meta.dataset}, {"config_ini", &c->meta.config_ini},
        {"created_by", (const char **)&c->created_by},
    };
    struct { const char *name; int64_t *dst; } ints[] = {
        {"num_classes", &c->meta.num_classes}, {"in_channels", &c->meta.in_channels},
        {"epoch", &c->meta.epoch}, {"step", &c->meta.step}, {"seed", &c->meta.seed},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        char *value = NULL;
        if (h5_attr_read_str(c->file, strs[i].name, &value) <= 0)
            return feed_ckpt_set_error(err, HINT_LIST, "checkpoint '%s' lacks the string root attribute '%s'",
                                       c->path, strs[i].name);
        *strs[i].dst = value;
    }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (h5_attr_read_i64(c->file, ints[i].name, ints[i].dst) <= 0)
            return feed_ckpt_set_error(err, HINT_LIST, "checkpoint '%s' lacks the integer root attribute '%s'",
                                       c->path, ints[i].name);
    return 0;
}

/* Reads dataset `path` (already open) as its own dtype into a scratch buffer and compares its
 * CRC32 with the stored one. */
static int verify_dataset(const feed_ckpt *c, const char *path, hid_t dataset, void **scratch, size_t *cap,
                          feed_ckpt_error *err);

static int verify_all(feed_ckpt *c, feed_ckpt_error *err) {
    feed_ckpt_entry *entries;
    size_t n;
    if (feed_ckpt_try_list(c, NULL, &entries, &n, err) != 0) return -1;
    void *scratch = NULL;
    size_t cap = 0;
    int st = 0;
    for (size_t i = 0; i < n && st == 0; i++) {
        hid_t dataset = H5Dopen2(c->file, entries[i].path, H5P_DEFAULT);
        if (dataset < 0)
            st = feed_ckpt_set_error(err, HINT_DAMAGED, "checkpoint '%s': tensor '%s' cannot be opened (HDF5: %s)",
                                     c->path, entries[i].path, h5_error_detail());
        else
            st = verify_dataset(c, entries[i].path, dataset, &scratch, &cap, err);
        if (dataset >= 0) H5Dclose(dataset);
    }
    free(scratch);
    feed_ckpt_entries_free(entries, n);
    return st;
}

static void ckpt_free(feed_ckpt *c) {
    if (c->file >= 0) H5Fclose(c->file);
    free((char *)c->meta.arch);
    free((char *)c->meta.dataset);
    free((char *)c->meta.config_ini);
    free(c->created_by);
    free(c->path);
    free(c);
}

feed_ckpt *feed_ckpt_try_open(const char *path, feed_ckpt_error *err) {
    feed_ckpt *c = feed_xcalloc(1, sizeof *c, "checkpoint");
    c->path = feed_xstrdup(path);
    c->file = -1;
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    int st = open_hdf5(c, err);
    if (st == 0) st = read_format(c, err);
    if (st == 0) st = read_meta(c, err);
    if (st == 0) st = verify_all(c, err);
    h5_quiet_end(&quiet);
    if (st != 0) {
        ckpt_free(c);
        return NULL;
    }
    return c;
}

feed_ckpt *feed_ckpt_open(const char *path) {
    feed_ckpt_error err;
    feed_ckpt *c = feed_ckpt_try_open(path, &err);
    if (!c) input_error(&err, __FILE__, __LINE__);
    return c;
}

void feed_ckpt_close(feed_ckpt *c) {
    if (!c) return;
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    ckpt_free(c);
    h5_quiet_end(&quiet);
}

const char *feed_ckpt_path(const feed_ckpt *c) { return c->path; }
const feed_ckpt_meta *feed_ckpt_get_meta(const feed_ckpt *c) { return &c->meta; }
int64_t feed_ckpt_format_version(const feed_ckpt *c) { return c->format_version; }
const char *feed_ckpt_created_by(const feed_ckpt *c) { return c->created_by; }

void feed_ckpt_require_model(const feed_ckpt *c, const char *arch, int64_t num_classes, int64_t in_channels) {
    const char *hint = "use a checkpoint of the configured model, or change the config to match the checkpoint";
    if (arch && strcmp(arch, c->meta.arch) != 0)
        FEED_INPUT_ERROR(hint, "checkpoint '%s' has arch %s but the config asks for %s", c->path, c->meta.arch, arch);
    if (num_classes >= 0 && num_classes != c->meta.num_classes)
        FEED_INPUT_ERROR(hint, "checkpoint '%s' has num_classes %" PRId64 " but the config asks for %" PRId64,
                         c->path, c->meta.num_classes, num_classes);
    if (in_channels >= 0 && in_channels != c->meta.in_channels)
        FEED_INPUT_ERROR(hint, "checkpoint '%s' has in_channels %" PRId64 " but the config asks for %" PRId64,
                         c->path, c->meta.in_channels, in_channels);
}

/* ---- tensors ------------------------------------------------------------------------------ */

/* Opens dataset group/key, or returns < 0 with err naming the missing key. */
static hid_t open_tensor(const feed_ckpt *c, const char *group, const char *key, char **path_out,
                         feed_ckpt_error *err) {
    const char *why;
    char *path = feed_ckpt_object_path(group, key, &why);
    *path_out = path;
    if (!path)
        return feed_ckpt_set_error(err, "a bug in the caller", "checkpoint '%s': bad tensor name '%s' + '%s': %s",
                                   c->path, group ? group : "", key ? key : "", why);
    int exists = h5_path_exists(c->file, path);
    H5O_info_t info;
    if (exists > 0 && H5Oget_info_by_name2(c->file, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
        info.type == H5O_TYPE_DATASET)
        return H5Dopen2(c->file, path, H5P_DEFAULT);
    return feed_ckpt_set_error(err, "was it written for another architecture? " HINT_LIST,
                               "checkpoint '%s' has no tensor '%s'", c->path, path);
}

static int check_crc(const feed_ckpt *c, const char *path, hid_t dataset, const feed_ckpt_shape *shape,
                     const void *data, feed_ckpt_error *err) {
    int64_t stored = 0;
    int found = h5_attr_read_i64(dataset, FEED_CKPT_CRC_ATTR, &stored);
    if (found <= 0)
        return feed_ckpt_set_error(err,
                                   "every tensor of a feed_mpi checkpoint carries one; after editing a file with h5py "
                                   "set ds.attrs['crc32'] = np.uint32(zlib.crc32(ds[()].tobytes())) (docs/checkpoint.md)",
                                   "checkpoint '%s': tensor '%s' has no %s attribute", c->path, path,
                                   found == 0 ? "'" FEED_CKPT_CRC_ATTR "'" : "integer '" FEED_CKPT_CRC_ATTR "'");
    size_t bytes = (size_t)feed_ckpt_shape_numel(shape) * feed_ckpt_dtype_size(shape->dtype);
    uint32_t actual = feed_ckpt_crc32(data, bytes);
    /* stored as uint32 by feed_mpi; a converter may have used int32 (negative) or int64 */
    bool in_range = stored >= INT32_MIN && stored <= (int64_t)UINT32_MAX;
    if (!in_range || (uint32_t)stored != actual) {
        char text[300];
        return feed_ckpt_set_error(err, HINT_DAMAGED,
                                   "checkpoint '%s' is corrupt: tensor '%s' (%s) has CRC32 0x%08x but 0x%08x"
                                   " was stored when it was written",
                                   c->path, path, feed_ckpt_shape_dtype_str(shape, text, sizeof text), actual,
                                   (uint32_t)stored);
    }
    return 0;
}

/* A tensor's values must be in the file (h5_dataset_fully_stored): a file of a few KB could
 * otherwise declare a tensor of terabytes and have it allocated and read. feed_mpi and h5py
 * write every tensor in full. */
static int check_stored(const feed_ckpt *c, const char *path, hid_t dataset, const feed_ckpt_shape *shape,
                        feed_ckpt_error *err) {
    if (h5_dataset_fully_stored(dataset) == 1) return 0;
    char text[300];
    return feed_ckpt_set_error(err, HINT_DAMAGED, "checkpoint '%s': tensor '%s' (%s) is not stored in full in the file",
                               c->path, path, feed_ckpt_shape_dtype_str(shape, text, sizeof text));
}

static int verify_dataset(const feed_ckpt *c, const char *path, hid_t dataset, void **scratch, size_t *cap,
                          feed_ckpt_error *err) {
    feed_ckpt_shape shape;
    if (h5_dataset_shape(dataset, &shape) < 0 || !feed_ckpt_shape_valid(&shape))
        return feed_ckpt_set_error(err, "feed_mpi checkpoints hold numeric tensors of rank <= 8 only (" HINT_LIST ")",
                                   "checkpoint '%s': dataset '%s' has a type or shape feed_mpi does not read", c->path,
                                   path);
    if (check_stored(c, path, dataset, &shape, err) != 0) return -1;
    unsigned long long claimed = feed_ckpt_dtype_size(shape.dtype);
    for (int d = 0; d < shape.rank && claimed; d++) claimed = h5_mul_size(claimed, (unsigned long long)shape.dims[d]);
    char why[200];
    if (feed_ckpt_shape_numel(&shape) > 0 && h5_bounded_by_storage(dataset, claimed, why, sizeof why) < 0)
        return feed_ckpt_set_error(err, HINT_DAMAGED, "checkpoint '%s': tensor '%s' %s", c->path, path, why);
    size_t bytes = (size_t)claimed;
    if (bytes > *cap) {
        free(*scratch);
        *scratch = feed_xmalloc(bytes, "checkpoint verification buffer");
        *cap = bytes;
    }
    if (h5_dataset_read(dataset, shape.dtype, *scratch) < 0)
        return feed_ckpt_set_error(err, HINT_DAMAGED, "checkpoint '%s': tensor '%s' cannot be read (HDF5: %s)", c->path,
                                   path, h5_error_detail());
    return check_crc(c, path, dataset, &shape, *scratch, err);
}

static int read_tensor(const feed_ckpt *c, const char *group, const char *key, const feed_ckpt_shape *expect,
                       void *dst, feed_ckpt_shape *found_shape, feed_ckpt_error *err) {
    char *path;
    hid_t dataset = open_tensor(c, group, key, &path, err);
    int st = dataset < 0 ? -1 : 0;
    feed_ckpt_shape shape;
    if (st == 0 && h5_dataset_shape(dataset, &shape) < 0)
        st = feed_ckpt_set_error(err, HINT_DAMAGED, "checkpoint '%s': cannot read the shape of tensor '%s' (HDF5: %s)",
                                 c->path, path, h5_error_detail());
    if (st == 0 && found_shape) *found_shape = shape;
    if (st == 0 && expect && !feed_ckpt_shape_equal(&shape, expect)) {
        char have[300], want[300];
        st = feed_ckpt_set_error(err, "was the checkpoint written for another model (arch, num_classes, width)? " HINT_LIST,
                                 "checkpoint '%s': tensor '%s' is %s but %s is expected", c->path, path,
                                 feed_ckpt_shape_dtype_str(&shape, have, sizeof have),
                                 feed_ckpt_shape_dtype_str(expect, want, sizeof want));
    }
    if (st == 0 && dst) {
        if (check_stored(c, path, dataset, &shape, err) != 0) /* a soft or external link: not verified at open */
            st = -1;
        else if (h5_dataset_read(dataset, shape.dtype, dst) < 0)
            st = feed_ckpt_set_error(err, HINT_DAMAGED, "checkpoint '%s': tensor '%s' cannot be read (HDF5: %s)",
                                     c->path, path, h5_error_detail());
        else
            st = check_crc(c, path, dataset, &shape, dst, err);
        size_t n = (size_t)feed_ckpt_shape_numel(&shape), at;
        if (st == 0 && shape.dtype == FEED_CKPT_F32 && (at = feed_first_nonfinite(dst, n)) < n)
            st = feed_ckpt_set_error(err, "the model diverged before it was saved, or the tool that wrote the file "
                                          "stored Inf/NaN; " HINT_OLDER,
                                     "checkpoint '%s': tensor '%s' holds %g at element %zu", c->path, path,
                                     ((const float *)dst)[at], at);
    }
    if (dataset >= 0) H5Dclose(dataset);
    free(path);
    return st;
}

int feed_ckpt_try_read(const feed_ckpt *c, const char *group, const char *key, feed_ckpt_shape expect, void *dst,
                       feed_ckpt_error *err) {
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    int st = read_tensor(c, group, key, &expect, dst, NULL, err);
    h5_quiet_end(&quiet);
    return st;
}

void feed_ckpt_read(const feed_ckpt *c, const char *group, const char *key, feed_ckpt_shape expect, void *dst) {
    feed_ckpt_error err;
    if (feed_ckpt_try_read(c, group, key, expect, dst, &err) != 0) input_error(&err, __FILE__, __LINE__);
}

bool feed_ckpt_has(const feed_ckpt *c, const char *group, const char *key) {
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    char *path;
    hid_t dataset = open_tensor(c, group, key, &path, NULL);
    if (dataset >= 0) H5Dclose(dataset);
    free(path);
    h5_quiet_end(&quiet);
    return dataset >= 0;
}

feed_ckpt_shape feed_ckpt_shape_of(const feed_ckpt *c, const char *group, const char *key) {
    feed_ckpt_error err;
    feed_ckpt_shape shape;
    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    int st = read_tensor(c, group, key, NULL, NULL, &shape, &err);
    h5_quiet_end(&quiet);
    if (st != 0) input_error(&err, __FILE__, __LINE__);
    return shape;
}

int64_t feed_ckpt_read_i64(const feed_ckpt *c, const char *group, const char *key) {
    int64_t value = 0;
    feed_ckpt_read(c, group, key, (feed_ckpt_shape){FEED_CKPT_I64, 0, {0}}, &value);
    return value;
}

double feed_ckpt_read_f64(const feed_ckpt *c, const char *group, const char *key) {
    double value = 0;
    feed_ckpt_read(c, group, key, (feed_ckpt_shape){FEED_CKPT_F64, 0, {0}}, &value);
    return value;
}

/* ---- extra attributes ------------------------------------------------------------------------ */

static hid_t open_attr_owner(const feed_ckpt *c, const char *object) {
    if (!object || !*object) return H5Oopen(c->file, "/", H5P_DEFAULT);
    const char *why;
    char *path = feed_ckpt_object_path(object, NULL, &why);
    if (!path) FEED_FAIL("a bug in the caller", "checkpoint '%s': bad object name '%s': %s", c->path, object, why);
    hid_t obj = h5_path_exists(c->file, path) > 0 ? H5Oopen(c->file, path, H5P_DEFAULT) : -1;
    free(path);
    return obj;
}

/* Reads attribute name of object with reader(); 1 found, 0 absent; a wrong type ends the job. */
#define READ_ATTR(c, object, name, type_name, reader_call)                                        \
    int found_ = 0;                                                                               \
    do {                                                                                          \
        h5_quiet quiet_;                                                                          \
        h5_quiet_begin(&quiet_);                                                                  \
        hid_t obj = open_attr_owner(c, object);                                                   \
        if (obj >= 0) {                                                                           \
            found_ = (reader_call);                                                               \
            H5Oclose(obj);                                                                        \
        }                                                                                         \
        h5_quiet_end(&quiet_);                                                                    \
        if (found_ < 0)                                                                           \
            FEED_INPUT_ERROR(HINT_LIST, "checkpoint '%s': attribute '%s' of '%s' is not %s", (c)->path, name, \
                             object && *object ? object : "/", type_name);                        \
    } while (0)

bool feed_ckpt_attr_i64(const feed_ckpt *c, const char *object, const char *name, int64_t *out) {
    READ_ATTR(c, object, name, "an integer", h5_attr_read_i64(obj, name, out));
    return found_ > 0;
}

bool feed_ckpt_attr_f64(const feed_ckpt *c, const char *object, const char *name, double *out) {
    READ_ATTR(c, object, name, "a float", h5_attr_read_f64(obj, name, out));
    return found_ > 0;
}

char *feed_ckpt_attr_str(const feed_ckpt *c, const char *object, const char *name) {
    char *value = NULL;
    READ_ATTR(c, object, name, "a string", h5_attr_read_str(obj, name, &value));
    return found_ > 0 ? value : NULL;
}
