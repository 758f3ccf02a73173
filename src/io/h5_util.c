/* h5_util.c - small HDF5 helpers: quiet error stack, types, groups, datasets, attributes.
 * See h5_util.h; nothing here ends the job. */
#include "h5_util.h"

#include "feed/check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- error stack ---------------------------------------------------------------------- */

void h5_quiet_begin(h5_quiet *saved) {
    H5Eget_auto2(H5E_DEFAULT, &saved->func, &saved->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_quiet_end(const h5_quiet *saved) { H5Eset_auto2(H5E_DEFAULT, saved->func, saved->data); }

static herr_t keep_innermost(unsigned n, const H5E_error2_t *e, void *buf) {
    /* walked downward: the last frame is the innermost, most specific one */
    if (e->desc && *e->desc) snprintf(buf, 512, "%s", e->desc);
    return 0;
}

const char *h5_error_detail(void) {
    static char detail[512];
    detail[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, detail);
    for (char *p = detail; *p; p++)
        if (*p == '\n') *p = ' ';
    /* System call failures read "file write failed: time = ..., filename = ..., errno = 27,
     * error message = 'File too large', buf = ...": keep what failed and the message. */
    char *msg = strstr(detail, "error message = '");
    char *colon = strchr(detail, ':');
    if (msg && colon && colon < msg) {
        msg += strlen("error message = '");
        char *end = strchr(msg, '\'');
        if (end) *end = 0;
        memmove(colon + 2, msg, strlen(msg) + 1);
        colon[1] = ' ';
    }
    return detail;
}

void h5_close_keep_error(herr_t (*close_fn)(hid_t), hid_t id) {
    if (id < 0) return;
    hid_t saved = H5Eget_current_stack(); /* moves the stack aside (and clears it) */
    close_fn(id);
    if (saved >= 0) H5Eset_current_stack(saved); /* puts it back and releases `saved` */
}

/* ---- types ------------------------------------------------------------------------------ */

hid_t h5_file_type(feed_ckpt_dtype dtype) {
    switch (dtype) {
    case FEED_CKPT_F32: return H5T_IEEE_F32LE;
    case FEED_CKPT_F64: return H5T_IEEE_F64LE;
    case FEED_CKPT_I32: return H5T_STD_I32LE;
    case FEED_CKPT_I64: return H5T_STD_I64LE;
    case FEED_CKPT_U8: return H5T_STD_U8LE;
    case FEED_CKPT_U32: return H5T_STD_U32LE;
    case FEED_CKPT_U64: return H5T_STD_U64LE;
    case FEED_CKPT_UNSUPPORTED: break;
    }
    return -1;
}

hid_t h5_mem_type(feed_ckpt_dtype dtype) {
    switch (dtype) {
    case FEED_CKPT_F32: return H5T_NATIVE_FLOAT;
    case FEED_CKPT_F64: return H5T_NATIVE_DOUBLE;
    case FEED_CKPT_I32: return H5T_NATIVE_INT32;
    case FEED_CKPT_I64: return H5T_NATIVE_INT64;
    case FEED_CKPT_U8: return H5T_NATIVE_UINT8;
    case FEED_CKPT_U32: return H5T_NATIVE_UINT32;
    case FEED_CKPT_U64: return H5T_NATIVE_UINT64;
    case FEED_CKPT_UNSUPPORTED: break;
    }
    return -1;
}

feed_ckpt_dtype h5_dtype_of(hid_t type) {
    size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_FLOAT:
        /* only IEEE single and double (not e.g. float16) */
        if (size == 4 && H5Tget_precision(type) == 32) return FEED_CKPT_F32;
        if (size == 8 && H5Tget_precision(type) == 64) return FEED_CKPT_F64;
        return FEED_CKPT_UNSUPPORTED;
    case H5T_INTEGER: {
        int is_signed = H5Tget_sign(type) == H5T_SGN_2;
        if (is_signed && size == 4) return FEED_CKPT_I32;
        if (is_signed && size == 8) return FEED_CKPT_I64;
        if (!is_signed && size == 1) return FEED_CKPT_U8;
        if (!is_signed && size == 4) return FEED_CKPT_U32;
        if (!is_signed && size == 8) return FEED_CKPT_U64;
        return FEED_CKPT_UNSUPPORTED;
    }
    default: return FEED_CKPT_UNSUPPORTED;
    }
}

/* ---- property lists --------------------------------------------------------------------- */

hid_t h5_fapl_create(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        h5_close_keep_error(H5Pclose, fapl);
        return -1;
    }
    return fapl;
}

static hid_t with_creation_order(hid_t plist) {
    if (plist < 0) return plist;
    unsigned flags = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
    if (H5Pset_link_creation_order(plist, flags) < 0 || H5Pset_attr_creation_order(plist, flags) < 0) {
        h5_close_keep_error(H5Pclose, plist);
        return -1;
    }
    return plist;
}

hid_t h5_gcpl_create(void) { return with_creation_order(H5Pcreate(H5P_GROUP_CREATE)); }
hid_t h5_fcpl_create(void) { return with_creation_order(H5Pcreate(H5P_FILE_CREATE)); }

/* ---- groups and paths ------------------------------------------------------------------- */

hid_t h5_group_ensure(hid_t loc, const char *path) {
    hid_t group = H5Gopen2(loc, ".", H5P_DEFAULT);
    if (group < 0 || !path || !*path) return group;
    char *copy = feed_xstrdup(path);
    char *save = NULL;
    for (char *part = strtok_r(copy, "/", &save); part && group >= 0; part = strtok_r(NULL, "/", &save)) {
        hid_t next;
        htri_t exists = H5Lexists(group, part, H5P_DEFAULT);
        if (exists > 0) {
            next = H5Gopen2(group, part, H5P_DEFAULT);
        } else if (exists == 0) {
            hid_t gcpl = h5_gcpl_create();
            next = gcpl < 0 ? -1 : H5Gcreate2(group, part, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            h5_close_keep_error(H5Pclose, gcpl);
        } else {
            next = -1;
        }
        h5_close_keep_error(H5Gclose, group);
        group = next;
    }
    free(copy);
    return group;
}

int h5_path_exists(hid_t loc, const char *path) {
    /* H5Lexists("a/b/c") fails when "a/b" is missing: test each prefix in turn */
    char *prefix = feed_xstrdup(path);
    int result = 1;
    for (char *slash = prefix;; slash++) {
        slash = strchr(slash, '/');
        if (slash) *slash = 0;
        htri_t exists = H5Lexists(loc, prefix, H5P_DEFAULT);
        if (exists <= 0) {
            result = exists < 0 ? -1 : 0;
            break;
        }
        /* a link may dangle (soft link): make sure an object is behind it */
        htri_t object = H5Oexists_by_name(loc, prefix, H5P_DEFAULT);
        if (object <= 0) {
            result = object < 0 ? -1 : 0;
            break;
        }
        if (!slash) break;
        *slash = '/';
    }
    free(prefix);
    return result;
}

/* ---- datasets ------------------------------------------------------------------------------ */

static hid_t dataspace_for(const feed_ckpt_shape *shape) {
    if (shape->rank == 0) return H5Screate(H5S_SCALAR);
    hsize_t dims[FEED_CKPT_MAX_RANK];
    for (int i = 0; i < shape->rank; i++) dims[i] = (hsize_t)shape->dims[i];
    return H5Screate_simple(shape->rank, dims, NULL);
}

hid_t h5_dataset_write(hid_t loc, const char *name, const feed_ckpt_shape *shape, const void *data) {
    hid_t space = dataspace_for(shape);
    if (space < 0) return space;
    hid_t dataset = H5Dcreate2(loc, name, h5_file_type(shape->dtype), space, H5P_DEFAULT,
                               H5P_DEFAULT, H5P_DEFAULT);
    h5_close_keep_error(H5Sclose, space);
    if (dataset < 0) return dataset;
    if (feed_ckpt_shape_numel(shape) > 0 &&
        H5Dwrite(dataset, h5_mem_type(shape->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        h5_close_keep_error(H5Dclose, dataset);
        return -1;
    }
    return dataset;
}

/* Chunks of a dataset of shape dims[rank] cut in chunk[rank] (saturating at HSIZE_UNDEF). */
static hsize_t chunk_count(int rank, const hsize_t *dims, const hsize_t *chunk) {
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) {
        hsize_t n = chunk[i] ? dims[i] / chunk[i] + (dims[i] % chunk[i] != 0) : HSIZE_UNDEF;
        if (n != 0 && total > HSIZE_UNDEF / n) return HSIZE_UNDEF;
        total *= n;
    }
    return total;
}

int h5_dataset_fully_stored(hid_t dataset) {
    hid_t dcpl = H5Dget_create_plist(dataset), space = H5Dget_space(dataset);
    int result = -1;
    if (dcpl >= 0 && space >= 0) {
        H5D_layout_t layout = H5Pget_layout(dcpl);
        hsize_t dims[H5S_MAX_RANK], chunk[H5S_MAX_RANK], stored = 0;
        int rank = H5Sget_simple_extent_ndims(space);
        H5D_space_status_t status;
        if (H5Sget_simple_extent_npoints(space) == 0 || layout == H5D_COMPACT) {
            result = 1; /* nothing to store, or stored in the object header */
        } else if (layout == H5D_CONTIGUOUS) {
            /* allocated means the whole block (the file must reach its end to open) */
            if (H5Dget_space_status(dataset, &status) >= 0) result = status == H5D_SPACE_STATUS_ALLOCATED;
        } else if (layout == H5D_CHUNKED) {
            /* every chunk written (the space status would call compressed chunks partial) */
            if (rank > 0 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0 && H5Pget_chunk(dcpl, rank, chunk) == rank &&
                H5Dget_num_chunks(dataset, space, &stored) >= 0) /* 1.10 refuses H5S_ALL here */
                result = stored == chunk_count(rank, dims, chunk);
        } else {
            result = 0; /* virtual datasets: values from other files */
        }
    }
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    return result;
}

int h5_dataset_shape(hid_t dataset, feed_ckpt_shape *out) {
    memset(out, 0, sizeof *out);
    hid_t type = H5Dget_type(dataset);
    if (type < 0) return -1;
    out->dtype = h5_dtype_of(type);
    H5Tclose(type);
    hid_t space = H5Dget_space(dataset);
    if (space < 0) return -1;
    int rank = H5Sget_simple_extent_ndims(space);
    H5S_class_t cls = H5Sget_simple_extent_type(space);
    hsize_t dims[H5S_MAX_RANK];
    int ok = rank >= 0 && rank <= FEED_CKPT_MAX_RANK && cls != H5S_NULL &&
             H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
    H5Sclose(space);
    if (!ok) return -1;
    out->rank = rank;
    for (int i = 0; i < rank; i++) out->dims[i] = (int64_t)dims[i];
    return 0;
}

int h5_dataset_read(hid_t dataset, feed_ckpt_dtype dtype, void *dst) {
    hid_t space = H5Dget_space(dataset);
    if (space < 0) return -1;
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    if (n < 0) return -1;
    if (n == 0) return 0;
    return H5Dread(dataset, h5_mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0 ? -1 : 0;
}

/* ---- attributes ----------------------------------------------------------------------------- */

static int attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value) {
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) return -1;
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0) return -1;
    hid_t attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    h5_close_keep_error(H5Sclose, space);
    if (attr < 0) return -1;
    herr_t st = H5Awrite(attr, mem_type, value);
    h5_close_keep_error(H5Aclose, attr);
    return st < 0 ? -1 : 0;
}

static hid_t utf8_vlen_string_type(void) {
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0) return type;
    if (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0) {
        h5_close_keep_error(H5Tclose, type);
        return -1;
    }
    return type;
}

int h5_attr_write_str(hid_t obj, const char *name, const char *value) {
    hid_t type = utf8_vlen_string_type();
    if (type < 0) return -1;
    int st = attr_write(obj, name, type, type, &value);
    h5_close_keep_error(H5Tclose, type);
    return st;
}

int h5_attr_write_i64(hid_t obj, const char *name, int64_t value) {
    return attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

int h5_attr_write_u32(hid_t obj, const char *name, uint32_t value) {
    return attr_write(obj, name, H5T_STD_U32LE, H5T_NATIVE_UINT32, &value);
}

int h5_attr_write_f64(hid_t obj, const char *name, double value) {
    return attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

/* Opens attribute `name` if it exists and is a scalar (or 1-element array) of class cls:
 * returns the attribute and its type, 0 if absent, -1 otherwise. */
static int attr_open_scalar(hid_t obj, const char *name, H5T_class_t cls, hid_t *attr, hid_t *type) {
    htri_t exists = H5Aexists(obj, name);
    if (exists <= 0) return exists < 0 ? -1 : 0;
    *attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (*attr < 0) return -1;
    *type = H5Aget_type(*attr);
    hid_t space = H5Aget_space(*attr);
    hssize_t npoints = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    if (space >= 0) H5Sclose(space);
    if (*type < 0 || H5Tget_class(*type) != cls || npoints != 1) {
        if (*type >= 0) H5Tclose(*type);
        H5Aclose(*attr);
        return -1;
    }
    return 1;
}

int h5_attr_read_str(hid_t obj, const char *name, char **out) {
    hid_t attr, type;
    int found = attr_open_scalar(obj, name, H5T_STRING, &attr, &type);
    if (found <= 0) return found;
    int st = -1;
    htri_t variable = H5Tis_variable_str(type);
    if (variable > 0) {
        hid_t mem = utf8_vlen_string_type();
        char *value = NULL;
        if (mem >= 0 && H5Aread(attr, mem, &value) >= 0 && value) {
            *out = feed_xstrdup(value);
            H5free_memory(value);
            st = 1;
        }
        if (mem >= 0) H5Tclose(mem);
    } else if (variable == 0) {
        size_t size = H5Tget_size(type);
        hid_t mem = H5Tcopy(type);
        char *value = feed_xcalloc(size + 1, 1, "string attribute");
        if (mem >= 0 && H5Tset_size(mem, size + 1) >= 0 && H5Tset_strpad(mem, H5T_STR_NULLTERM) >= 0 &&
            H5Aread(attr, mem, value) >= 0) {
            *out = value;
            st = 1;
        } else {
            free(value);
        }
        if (mem >= 0) H5Tclose(mem);
    }
    H5Tclose(type);
    H5Aclose(attr);
    return st;
}

int h5_attr_read_i64(hid_t obj, const char *name, int64_t *out) {
    hid_t attr, type;
    int found = attr_open_scalar(obj, name, H5T_INTEGER, &attr, &type);
    if (found <= 0) return found;
    int st = H5Aread(attr, H5T_NATIVE_INT64, out) < 0 ? -1 : 1;
    H5Tclose(type);
    H5Aclose(attr);
    return st;
}

int h5_attr_read_f64(hid_t obj, const char *name, double *out) {
    hid_t attr, type;
    int found = attr_open_scalar(obj, name, H5T_FLOAT, &attr, &type);
    if (found <= 0) return found;
    int st = H5Aread(attr, H5T_NATIVE_DOUBLE, out) < 0 ? -1 : 1;
    H5Tclose(type);
    H5Aclose(attr);
    return st;
}

unsigned long long h5_mul_size(unsigned long long a, unsigned long long b) {
    return a && b > ULLONG_MAX / a ? 0 : a * b;
}

#define DEFLATE_MAX_RATIO 1032ull

int h5_bounded_by_storage(hid_t d, unsigned long long bytes, char *why, size_t cap) {
    if (bytes == 0) {
        snprintf(why, cap, "its shape overflows 64-bit sizes");
        return -1;
    }
    hid_t dcpl = H5Dget_create_plist(d);
    int filters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    unsigned long long stored = H5Dget_storage_size(d);
    if (stored == 0) {
        snprintf(why, cap, "holds no data (its shape says %llu bytes)", bytes);
        return -1;
    }
    unsigned long long most = filters > 0 ? h5_mul_size(stored, DEFLATE_MAX_RATIO) : stored;
    if (most && bytes > most) {
        snprintf(why, cap, "claims %llu bytes but the file stores %llu bytes of it%s", bytes, stored,
                 filters > 0 ? " (more than any deflate ratio allows)" : "");
        return -1;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    unsigned long long ram = pages > 0 && page > 0 ? (unsigned long long)pages * (unsigned long long)page : 0;
    if (ram && bytes > ram) {
        snprintf(why, cap, "needs %.1f GiB in memory, this machine has %.1f GiB", (double)bytes / (1 << 30),
                 (double)ram / (1 << 30));
        return -1;
    }
    return 0;
}
