/* feature_cache_write.c - writing a feature cache (feature_cache.h): PATH.partial created (or
 * reopened to resume), rows written view by view, progress recorded and flushed, then marked
 * complete and renamed to PATH. A failure (a full disk) ends the job naming the file; the
 * .partial file stays for the next run to resume, and nothing under PATH is ever half written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "feature_cache_internal.h"
#include "feed/check.h"
#include "feed/feature_transport.h"
#include "feed/net.h"
#include "h5_util.h"

#define WRITE_HINT "is the disk full or over quota? Free space and run the same command: it resumes"

/* A failed write: ends the job from the calling thread when it may (creating, committing), or
 * records the message for feed_cache_error (rows and progress, written on a writer thread). */
static noreturn void write_failed(const feed_cache *c, const char *what) {
    const char *detail = h5_error_detail();
    FEED_FAIL(WRITE_HINT, "feature cache %s: %s (%s); the unfinished file stays for a resume", c->partial, what,
              *detail ? feed_fmt("HDF5: %s", detail) : strerror(errno));
}

static int write_error(feed_cache *c, const char *what) {
    const char *detail = h5_error_detail();
    snprintf(c->error, sizeof c->error, "feature cache %s: %s (%s); the unfinished file stays for a resume", c->partial,
             what, *detail ? feed_fmt("HDF5: %s", detail) : strerror(errno));
    return -1;
}

const char *feed_cache_error(const feed_cache *c) { return c->error; }

static void put_spec(feed_cache *c) {
    const feed_cache_spec *s = &c->spec;
    hid_t f = c->file;
    int st = h5_attr_write_str(f, "format", FEED_CACHE_FORMAT) | h5_attr_write_i64(f, "format_version", FEED_CACHE_FORMAT_VERSION) |
             h5_attr_write_i64(f, "complete", 0) | h5_attr_write_i64(f, "rows_done", 0) |
             h5_attr_write_str(f, "teacher", s->teacher) | h5_attr_write_str(f, "teacher_sha256", s->teacher_sha256) |
             h5_attr_write_str(f, "dataset", s->dataset) | h5_attr_write_str(f, "dataset_sha256", s->dataset_sha256) |
             h5_attr_write_i64(f, "views", s->views) | h5_attr_write_i64(f, "seed", s->seed) |
             h5_attr_write_str(f, "dtype", feed_wire_dtype_name((feed_wire_dtype)s->dtype)) |
             h5_attr_write_i64(f, "pad", s->pad) | h5_attr_write_i64(f, "pad_mode", s->pad_mode) |
             h5_attr_write_i64(f, "crop", s->crop) | h5_attr_write_i64(f, "flip", s->flip) |
             h5_attr_write_i64(f, "subset_per_class", s->subset_per_class) |
             h5_attr_write_f64(f, "subset_fraction", s->subset_fraction) |
             h5_attr_write_i64(f, "num_samples", s->n_samples) | h5_attr_write_i64(f, "outputs", s->layout.outputs) |
             h5_attr_write_i64(f, "compress", s->compress) |
             h5_attr_write_str(f, "teacher_precision", s->teacher_precision == FEED_PRECISION_BF16 ? "bf16" : "fp32");
    /* dtype is read back as an int by cache_read_spec: store its index under a second name */
    st |= h5_attr_write_i64(f, "dtype_index", s->dtype);
    hsize_t n = FEED_TEACHER_LAYOUT_INTS;
    hid_t sp = H5Screate_simple(1, &n, NULL), a = H5Acreate2(f, "layout", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT, &s->layout) < 0) st = -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (st < 0) write_failed(c, "writing its attributes");
}

/* A (V, N, row...) dataset chunked in whole rows: about 256 KB per chunk uncompressed (a
 * minibatch write touches few chunks; a student reads single rows of it directly, without
 * the chunk cache), about 16 KB compressed (a row read decompresses its whole chunk). */
static hid_t create_rows(feed_cache *c, const char *name, hid_t type, int row_rank, const hsize_t *row_dims,
                         size_t row_bytes, bool compress) {
    hsize_t dims[5] = {(hsize_t)c->spec.views, (hsize_t)c->spec.n_samples}, chunk[5] = {1, 1};
    /* rows per chunk: near the target, at most N, and dividing the batch, so that a
       minibatch (rows s*B ..) is whole chunks written directly (feed_cache_write_rows) */
    size_t target = compress ? 16384 : 262144;
    hsize_t most = row_bytes >= target ? 1 : target / row_bytes, B = (hsize_t)c->spec.layout.batch;
    if (most > dims[1]) most = dims[1];
    hsize_t rows = 1;
    for (hsize_t r = most; r >= 1; r--)
        if (B % r == 0) {
            rows = r;
            break;
        }
    chunk[1] = rows;
    for (int i = 0; i < row_rank; i++) dims[2 + i] = chunk[2 + i] = row_dims[i];
    hid_t sp = H5Screate_simple(2 + row_rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_chunk(dcpl, 2 + row_rank, chunk);
    if (compress) H5Pset_shuffle(dcpl), H5Pset_deflate(dcpl, 4);
    hid_t d = H5Dcreate2(c->file, name, type, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl), H5Pclose(lcpl), H5Sclose(sp);
    if (d < 0) write_failed(c, feed_fmt("creating /%s", name));
    return d;
}

static void create_datasets(feed_cache *c, const int64_t *samples, bool compress) {
    size_t esize = feed_wire_dtype_size((feed_wire_dtype)c->spec.dtype);
    for (int i = 0; i < c->n_blocks; i++)
        c->dset[i] = create_rows(c, c->block[i].name, c->file_type, c->block[i].rank, c->block[i].dims,
                                 c->block[i].elems * esize, compress);
    hsize_t three = 3;
    c->augment = create_rows(c, "augment", H5T_STD_I32LE, 1, &three, 3 * sizeof(int32_t), false);
    hsize_t n = (hsize_t)c->spec.n_samples;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(c->file, "samples", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, samples) < 0)
        write_failed(c, "writing /samples");
    H5Dclose(d), H5Sclose(sp);
}

/* Rows per chunk of a row dataset that takes direct chunk writes (unfiltered), or 0. Asked
 * once when the file is created or reopened, not per write. */
static int64_t direct_rows(hid_t d) {
    hid_t dcpl = H5Dget_create_plist(d);
    hsize_t chunk[5];
    int rank = H5Pget_chunk(dcpl, 5, chunk), filters = H5Pget_nfilters(dcpl);
    H5Pclose(dcpl);
    return rank >= 2 && filters == 0 && chunk[0] == 1 ? (int64_t)chunk[1] : 0;
}

/* An unfinished file of an earlier run with the same spec and samples: reopened, *rows_done its
 * progress. Anything else there is removed (it is only ever a .partial). */
static bool try_resume(feed_cache *c, const int64_t *samples, int64_t *rows_done) {
    if (access(c->partial, F_OK) != 0) return false;
    hid_t f = H5Fopen(c->partial, H5F_ACC_RDWR, H5P_DEFAULT);
    feed_cache_spec have;
    char why[600];
    const char *hint;
    bool ok = f >= 0 && cache_read_spec(f, &have, why, sizeof why) == 0 &&
              !cache_spec_mismatch(&have, &c->spec, why, sizeof why, &hint) && have.layout.outputs == c->spec.layout.outputs &&
              h5_attr_read_i64(f, "rows_done", rows_done) == 1;
    int64_t *stored = NULL;
    if (ok) {
        stored = feed_xmalloc(sizeof(int64_t) * (size_t)c->spec.n_samples, "cached samples");
        hid_t d = H5Dopen2(f, "samples", H5P_DEFAULT);
        ok = d >= 0 && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored) >= 0 &&
             memcmp(stored, samples, sizeof(int64_t) * (size_t)c->spec.n_samples) == 0;
        if (d >= 0) H5Dclose(d);
        free(stored);
    }
    if (!ok) {
        if (f >= 0) H5Fclose(f);
        printf("cache: %s is from another cache job or damaged: writing it anew\n", c->partial);
        unlink(c->partial);
        return false;
    }
    c->file = f;
    for (int i = 0; i < c->n_blocks; i++) c->dset[i] = H5Dopen2(f, c->block[i].name, H5P_DEFAULT);
    c->augment = H5Dopen2(f, "augment", H5P_DEFAULT);
    return true;
}

feed_cache *feed_cache_create(const char *path, const feed_cache_spec *spec, const int64_t *samples, int64_t *rows_done) {
    feed_cache *c = feed_xcalloc(1, sizeof *c, "feature cache");
    c->path = feed_xstrdup(path);
    c->partial = feed_xstrdup(feed_fmt("%s.partial", path));
    c->spec = *spec;
    c->n_blocks = cache_blocks_of(&spec->layout, c->block);
    cache_types(spec->dtype, &c->file_type, &c->mem_type);
    h5_quiet q;
    h5_quiet_begin(&q);
    *rows_done = 0;
    if (!try_resume(c, samples, rows_done)) {
        hid_t fcpl = h5_fcpl_create(), fapl = h5_fapl_create();
        c->file = H5Fcreate(c->partial, H5F_ACC_TRUNC, fcpl, fapl);
        H5Pclose(fcpl), H5Pclose(fapl);
        if (c->file < 0)
            FEED_FAIL("is cache.dir writable?", "cannot create feature cache %s (HDF5: %s)", c->partial, h5_error_detail());
        put_spec(c);
        create_datasets(c, samples, spec->compress);
        if (H5Fflush(c->file, H5F_SCOPE_GLOBAL) < 0) write_failed(c, "flushing");
    }
    for (int i = 0; i < c->n_blocks; i++) c->chunk_rows[i] = direct_rows(c->dset[i]);
    c->aug_chunk_rows = direct_rows(c->augment);
    h5_quiet_end(&q);
    size_t largest = 0;
    for (int i = 0; i < c->n_blocks; i++)
        if (c->block[i].elems > largest) largest = c->block[i].elems;
    c->wire_cap = largest * (size_t)spec->layout.batch * feed_wire_dtype_size((feed_wire_dtype)spec->dtype);
    c->wire = feed_xmalloc(c->wire_cap ? c->wire_cap : 1, "cache rows");
    return c;
}

static int write_slab(feed_cache *c, hid_t d, int row_rank, const hsize_t *row_dims, int v, int64_t row0, int n,
                       hid_t mem_type, const void *data, const char *name) {
    hid_t fs = H5Dget_space(d);
    hsize_t start[5] = {(hsize_t)v, (hsize_t)row0, 0, 0, 0}, count[5] = {1, (hsize_t)n, 1, 1, 1}, total = (hsize_t)n;
    for (int i = 0; i < row_rank; i++) count[2 + i] = row_dims[i], total *= row_dims[i];
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(1, &total, NULL);
    herr_t st = H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, data);
    H5Sclose(ms), H5Sclose(fs);
    if (st < 0)
        return write_error(c, feed_fmt("writing rows %lld..%lld of view %d of /%s", (long long)row0,
                                       (long long)row0 + n - 1, v, name));
    return 0;
}

/* Rows row0 .. row0+n-1 (stored bytes, row_bytes each) as whole chunks of R rows with
 * H5Dwrite_chunk, bypassing HDF5's chunk cache and selections; the last chunk of the data
 * set is padded with zeros. Returns 1 when done, 0 when the layout does not allow it. */
static int write_chunks(feed_cache *c, hid_t d, int64_t R, int v, int64_t row0, int n, size_t row_bytes,
                        const void *data, const char *name) {
    if (R < 1 || row0 % R != 0 || (n % R != 0 && row0 + n != c->spec.n_samples)) return 0;
    size_t bytes = (size_t)R * row_bytes;
    for (int64_t r = 0; r < n; r += R) {
        const void *src = (const char *)data + (size_t)r * row_bytes;
        if (r + R > n) { /* the data set's last chunk: rows past N are zeros */
            if (c->pad_cap < bytes) {
                free(c->pad);
                c->pad = feed_xmalloc(bytes, "cache chunk");
                c->pad_cap = bytes;
            }
            memset(c->pad, 0, bytes);
            memcpy(c->pad, src, (size_t)(n - r) * row_bytes);
            src = c->pad;
        }
        hsize_t offset[5] = {(hsize_t)v, (hsize_t)(row0 + r), 0, 0, 0};
        if (H5Dwrite_chunk(d, H5P_DEFAULT, 0, offset, bytes, src) < 0)
            return write_error(c, feed_fmt("writing rows %lld..%lld of view %d of /%s", (long long)(row0 + r),
                                           (long long)(row0 + r + R - 1), v, name));
    }
    return 1;
}

int feed_cache_write_rows(feed_cache *c, int v, int64_t row0, int n, const float *payload, const int32_t *augment) {
    size_t B = (size_t)c->spec.layout.batch, esize = feed_wire_dtype_size((feed_wire_dtype)c->spec.dtype);
    h5_quiet q;
    h5_quiet_begin(&q);
    int st = 0;
    for (int i = 0; i < c->n_blocks; i++) {
        const cache_block *b = &c->block[i];
        const float *rows = payload + b->offset * B; /* (B, row) of which the first n */
        const void *data = rows;
        if (c->spec.dtype != FEED_WIRE_FP32) {
            feed_wire_encode((feed_wire_dtype)c->spec.dtype, rows, c->wire, (size_t)n * b->elems);
            data = c->wire;
        }
        int direct = st == 0 ? write_chunks(c, c->dset[i], c->chunk_rows[i], v, row0, n, b->elems * esize, data, b->name)
                             : 0;
        if (direct < 0) st = -1;
        else if (direct == 0 && st == 0) st = write_slab(c, c->dset[i], b->rank, b->dims, v, row0, n, c->mem_type, data, b->name);
    }
    hsize_t three = 3;
    int direct = st == 0 ? write_chunks(c, c->augment, c->aug_chunk_rows, v, row0, n, 3 * sizeof(int32_t), augment,
                                        "augment")
                         : 0;
    if (direct < 0) st = -1;
    else if (direct == 0 && st == 0)
        st = write_slab(c, c->augment, 1, &three, v, row0, n, H5T_NATIVE_INT32, augment, "augment");
    h5_quiet_end(&q);
    return st;
}

int feed_cache_set_progress(feed_cache *c, int64_t rows_done) {
    h5_quiet q;
    h5_quiet_begin(&q);
    int st = 0;
    if (h5_attr_write_i64(c->file, "rows_done", rows_done) < 0 || H5Fflush(c->file, H5F_SCOPE_GLOBAL) < 0)
        st = write_error(c, "recording its progress");
    h5_quiet_end(&q);
    return st;
}

void feed_cache_commit(feed_cache *c) {
    h5_quiet q;
    h5_quiet_begin(&q);
    if (h5_attr_write_i64(c->file, "complete", 1) < 0) write_failed(c, "marking it complete");
    for (int i = 0; i < c->n_blocks; i++) H5Dclose(c->dset[i]), c->dset[i] = 0;
    H5Dclose(c->augment), c->augment = 0;
    herr_t st = H5Fclose(c->file);
    c->file = 0;
    if (st < 0) write_failed(c, "closing it");
    h5_quiet_end(&q);
    const char *failed = NULL;
    if (feed_io_rename_durable(c->partial, c->path, &failed) < 0)
        FEED_FAIL(WRITE_HINT, "feature cache %s: %s: %s", c->path, failed, strerror(errno));
    feed_cache_close(c);
}
