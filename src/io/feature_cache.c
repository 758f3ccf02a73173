/* feature_cache.c - what a feature cache is (feature_cache.h): its spec, its blocks, checking
 * a stored cache against the spec a student expects, and reading rows. Writing is in
 * feature_cache_write.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <unistd.h>

#include "feature_cache_internal.h"
#include "feed/check.h"
#include "feed/engine.h"
#include "feed/feature_transport.h"
#include "feed/net.h"
#include "h5_util.h"

#define CACHE_HINT "write the cache again for this job (run.mode = cache with the same [data] and [cache]), " \
                   "or give this job the settings the cache was made with; docs/cache.md"

/* ---- spec ---- */

uint64_t feed_cache_seed(const feed_config *cfg) {
    return (uint64_t)(cfg->cache.seed ? cfg->cache.seed : cfg->run.seed);
}

char *feed_cache_path(const feed_config *cfg, int n) {
    return feed_xstrdup(feed_fmt("%s/teacher_%d.h5", cfg->cache.dir, n));
}

void feed_cache_dataset_sha256(const feed_dataset *ds, char out[65]) {
    const feed_split_data *s = &ds->split[FEED_SPLIT_TRAIN];
    char images[65], labels[65], stats[65];
    feed_sha256(s->images, (uint64_t)s->n * (uint64_t)feed_dataset_image_bytes(ds), images);
    feed_sha256(s->labels, (uint64_t)s->n * sizeof(int32_t), labels);
    float ms[2 * FEED_MAX_CHANNELS];
    memcpy(ms, ds->mean, sizeof(float) * (size_t)ds->channels);
    memcpy(ms + ds->channels, ds->std, sizeof(float) * (size_t)ds->channels);
    feed_sha256(ms, sizeof(float) * 2 * (size_t)ds->channels, stats);
    char all[3 * 64 + 1];
    snprintf(all, sizeof all, "%s%s%s", images, labels, stats);
    feed_sha256(all, 3 * 64, out);
}

feed_cache_spec feed_cache_spec_of(const feed_config *cfg, int n, const feed_dataset *ds,
                                   const feed_teacher_layout *layout, int64_t n_samples) {
    feed_cache_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.teacher, sizeof s.teacher, "%s", cfg->distill.teachers.v[n]);
    feed_sha256_file(cfg->distill.teachers.v[n], s.teacher_sha256);
    snprintf(s.dataset, sizeof s.dataset, "%s", cfg->data.path);
    feed_cache_dataset_sha256(ds, s.dataset_sha256);
    s.views = cfg->cache.views;
    s.seed = (int)feed_cache_seed(cfg);
    s.dtype = cfg->cache.dtype;
    s.pad = cfg->data.pad;
    s.pad_mode = cfg->data.pad_mode;
    s.crop = cfg->data.crop;
    s.flip = cfg->data.flip;
    s.subset_per_class = cfg->data.subset_per_class;
    s.subset_fraction = cfg->data.subset_fraction < 1.0 ? cfg->data.subset_fraction : 0.0;
    s.layout = *layout;
    s.n_samples = n_samples;
    s.compress = cfg->cache.compress;
    s.teacher_precision = cfg->run.precision == FEED_PRECISION_BF16 && feed_engine_bf16_supported()
                              ? FEED_PRECISION_BF16 : FEED_PRECISION_FP32;
    return s;
}

int cache_blocks_of(const feed_teacher_layout *l, cache_block *b) {
    int n = 0;
    size_t off = 0;
    if (l->outputs & FEED_OUT_FINAL) {
        b[n] = (cache_block){FEED_OUT_FINAL, "final", 3, {(hsize_t)l->final_c, (hsize_t)l->final_h, (hsize_t)l->final_w},
                             (size_t)l->final_c * l->final_h * l->final_w, off};
        off += b[n++].elems;
    }
    if (l->outputs & FEED_OUT_ATTENTION)
        for (int s = 0; s < l->stages; s++) {
            b[n] = (cache_block){FEED_OUT_ATTENTION, "", 1, {(hsize_t)l->stage_h[s] * l->stage_w[s], 0, 0},
                                 (size_t)l->stage_h[s] * l->stage_w[s], off};
            snprintf(b[n].name, sizeof b[n].name, "attention/layer%d", s + 1);
            off += b[n++].elems;
        }
    if (l->outputs & FEED_OUT_LOGITS) {
        b[n] = (cache_block){FEED_OUT_LOGITS, "logits", 1, {(hsize_t)l->classes, 0, 0}, (size_t)l->classes, off};
        off += b[n++].elems;
    }
    if (l->outputs & FEED_OUT_FACTOR) {
        b[n] = (cache_block){FEED_OUT_FACTOR, "factor", 3,
                             {(hsize_t)l->factor_c, (hsize_t)l->final_h, (hsize_t)l->final_w},
                             (size_t)l->factor_c * l->final_h * l->final_w, off};
        off += b[n++].elems;
    }
    return n;
}

uint64_t feed_cache_bytes(const feed_cache_spec *spec) {
    cache_block b[CACHE_MAX_BLOCKS];
    int n = cache_blocks_of(&spec->layout, b);
    uint64_t row = 0;
    for (int i = 0; i < n; i++) row += b[i].elems * feed_wire_dtype_size((feed_wire_dtype)spec->dtype);
    return (uint64_t)spec->views * (uint64_t)spec->n_samples * (row + 3 * sizeof(int32_t)) +
           (uint64_t)spec->n_samples * sizeof(int64_t);
}

void cache_types(int dtype, hid_t *file_type, hid_t *mem_type) {
    if (dtype == FEED_WIRE_FP32) {
        *file_type = H5T_IEEE_F32LE;
        *mem_type = H5T_NATIVE_FLOAT;
    } else if (dtype == FEED_WIRE_BF16) {
        *file_type = H5T_STD_U16LE;
        *mem_type = H5T_NATIVE_UINT16;
    } else { /* IEEE half, the type h5py maps to numpy.float16; read and written raw */
        hid_t t = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(t, 15, 10, 5, 0, 10);
        H5Tset_size(t, 2);
        H5Tset_ebias(t, 15);
        *file_type = *mem_type = t;
    }
}

/* ---- the stored spec ---- */

static int read_str(hid_t f, const char *name, char *out, size_t cap, char *why, size_t wcap) {
    char *v = NULL;
    if (h5_attr_read_str(f, name, &v) != 1) {
        snprintf(why, wcap, "root attribute '%s' is missing", name);
        return -1;
    }
    snprintf(out, cap, "%s", v);
    free(v);
    return 0;
}

static int read_int(hid_t f, const char *name, int64_t *out, char *why, size_t wcap) {
    if (h5_attr_read_i64(f, name, out) != 1) {
        snprintf(why, wcap, "root attribute '%s' is missing", name);
        return -1;
    }
    return 0;
}

int cache_read_spec(hid_t f, feed_cache_spec *s, char *why, size_t cap) {
    memset(s, 0, sizeof *s);
    int64_t v[11];
    static const char *const names[11] = {"views", "seed", "dtype_index", "pad", "pad_mode", "crop", "flip",
                                          "subset_per_class", "num_samples", "outputs", "format_version"};
    if (read_str(f, "teacher", s->teacher, sizeof s->teacher, why, cap) ||
        read_str(f, "teacher_sha256", s->teacher_sha256, sizeof s->teacher_sha256, why, cap) ||
        read_str(f, "dataset", s->dataset, sizeof s->dataset, why, cap) ||
        read_str(f, "dataset_sha256", s->dataset_sha256, sizeof s->dataset_sha256, why, cap))
        return -1;
    for (int i = 0; i < 11; i++)
        if (read_int(f, names[i], &v[i], why, cap)) return -1;
    if (h5_attr_read_f64(f, "subset_fraction", &s->subset_fraction) != 1) {
        snprintf(why, cap, "root attribute 'subset_fraction' is missing");
        return -1;
    }
    s->views = (int)v[0], s->seed = (int)v[1], s->dtype = (int)v[2], s->pad = (int)v[3], s->pad_mode = (int)v[4];
    s->crop = (int)v[5], s->flip = (int)v[6], s->subset_per_class = v[7], s->n_samples = v[8];
    int64_t compress = 0;
    h5_attr_read_i64(f, "compress", &compress); /* absent: not compressed */
    s->compress = compress != 0;
    char precision[16] = "fp32"; /* absent: written before bf16 teachers existed */
    if (H5Aexists(f, "teacher_precision") > 0) read_str(f, "teacher_precision", precision, sizeof precision, why, cap);
    s->teacher_precision = strcmp(precision, "bf16") == 0 ? FEED_PRECISION_BF16 : FEED_PRECISION_FP32;
    /* the layout: one int array attribute, FEED_TEACHER_LAYOUT_INTS long */
    if (H5Aexists(f, "layout") <= 0) {
        snprintf(why, cap, "root attribute 'layout' is missing");
        return -1;
    }
    hid_t a = H5Aopen(f, "layout", H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int ok = n == FEED_TEACHER_LAYOUT_INTS && H5Aread(a, H5T_NATIVE_INT, &s->layout) >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (!ok || s->layout.outputs != (int)v[9] || v[10] != FEED_CACHE_FORMAT_VERSION || s->views < 1 ||
        s->n_samples < 1 || s->dtype < 0 || s->dtype > 2) {
        snprintf(why, cap, "its layout or version attributes are damaged (format_version %lld)", (long long)v[10]);
        return -1;
    }
    return 0;
}

static const char *outputs_names(int outputs, char *buf, size_t cap) {
    static const char *const names[4] = {"final map", "attention maps", "logits", "FT factor"};
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < 4; i++)
        if (outputs & (1 << i)) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", names[i]);
    if (!n) snprintf(buf, cap, "nothing");
    return buf;
}

int cache_spec_mismatch(const feed_cache_spec *have, const feed_cache_spec *want, char *what, size_t cap,
                        const char **hint) {
    *hint = CACHE_HINT;
    if (strcmp(have->teacher_sha256, want->teacher_sha256) != 0) {
        snprintf(what, cap, "was written for another teacher checkpoint ('%s', sha256 %.12s...; this job's '%s' has "
                 "%.12s...)", have->teacher, have->teacher_sha256, want->teacher, want->teacher_sha256);
        return 1;
    }
    if (strcmp(have->dataset_sha256, want->dataset_sha256) != 0) {
        snprintf(what, cap, "was written from another data set ('%s'; its training images or labels differ from "
                 "'%s')", have->dataset, want->dataset);
        return 1;
    }
    struct { const char *key; long long a, b; } ints[] = {
        {"cache.views", have->views, want->views},           {"cache.seed (augmentation seed)", have->seed, want->seed},
        {"cache.dtype", have->dtype, want->dtype},           {"data.pad", have->pad, want->pad},
        {"data.pad_mode", have->pad_mode, want->pad_mode},   {"data.crop", have->crop, want->crop},
        {"data.flip", have->flip, want->flip},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].a != ints[i].b) {
            if (i < 2) /* views and seed: this job can follow the cache */
                *hint = "set cache.views and cache.seed to the values the cache was written with, or write it "
                        "again (docs/cache.md)";
            if (strcmp(ints[i].key, "cache.dtype") == 0)
                snprintf(what, cap, "holds %s outputs, this job asks for cache.dtype = %s",
                         feed_wire_dtype_name((feed_wire_dtype)have->dtype), feed_wire_dtype_name((feed_wire_dtype)want->dtype));
            else
                snprintf(what, cap, "was written with %s = %lld, this job has %lld", ints[i].key, ints[i].a, ints[i].b);
            return 1;
        }
    const feed_teacher_layout *h = &have->layout, *w = &want->layout;
    int missing = w->outputs & ~h->outputs;
    if (missing) {
        char a[80], b[80];
        snprintf(what, cap, "holds the teacher's %s; this job's distill.terms also need its %s",
                 outputs_names(h->outputs, a, sizeof a), outputs_names(missing, b, sizeof b));
        *hint = "write the cache with the distill.terms of the students that will use it (docs/cache.md)";
        return 1;
    }
    bool same_shapes = h->final_c == w->final_c && h->final_h == w->final_h && h->final_w == w->final_w &&
                       h->classes == w->classes && (!(w->outputs & FEED_OUT_FACTOR) || h->factor_c == w->factor_c);
    if (w->outputs & FEED_OUT_ATTENTION) {
        same_shapes = same_shapes && h->stages == w->stages;
        for (int s = 0; same_shapes && s < w->stages; s++)
            same_shapes = h->stage_h[s] == w->stage_h[s] && h->stage_w[s] == w->stage_w[s];
    }
    if (!same_shapes) {
        snprintf(what, cap, "holds a final map of %dx%dx%d and %d classes, the teacher gives %dx%dx%d and %d", h->final_c,
                 h->final_h, h->final_w, h->classes, w->final_c, w->final_h, w->final_w, w->classes);
        return 1;
    }
    return 0;
}

/* ---- reading ---- */

/* The chunk addresses of an uncompressed row dataset; false when they cannot all be had (then
 * rows are read through HDF5). */
static bool map_rows(hid_t d, int64_t views, int64_t n, size_t row_bytes, row_map *m) {
    hid_t dcpl = H5Dget_create_plist(d);
    hsize_t chunk[5];
    int rank = dcpl >= 0 ? H5Pget_chunk(dcpl, 5, chunk) : -1;
    int filters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (rank < 2 || filters != 0 || chunk[0] != 1) return false;
    m->rows_per_chunk = (int64_t)chunk[1];
    m->chunks_per_view = (n + m->rows_per_chunk - 1) / m->rows_per_chunk;
    m->row_bytes = row_bytes;
    m->addr = feed_xmalloc(sizeof(haddr_t) * (size_t)(views * m->chunks_per_view), "cache chunk addresses");
    for (int64_t v = 0; v < views; v++)
        for (int64_t j = 0; j < m->chunks_per_view; j++) {
            hsize_t offset[5] = {(hsize_t)v, (hsize_t)(j * m->rows_per_chunk), 0, 0, 0}, size = 0;
            unsigned mask = 0;
            haddr_t addr = HADDR_UNDEF;
            if (H5Dget_chunk_info_by_coord(d, offset, &mask, &addr, &size) < 0 || addr == HADDR_UNDEF ||
                size < (hsize_t)(m->rows_per_chunk * (int64_t)row_bytes)) {
                free(m->addr), m->addr = NULL;
                return false;
            }
            m->addr[v * m->chunks_per_view + j] = addr;
        }
    return true;
}

/* Row `row` of view v with one pread; false on a short read or an I/O error. */
static bool pread_row(int fd, const row_map *m, int v, int64_t row, void *dst) {
    off_t at = (off_t)(m->addr[v * m->chunks_per_view + row / m->rows_per_chunk] +
                       (haddr_t)(row % m->rows_per_chunk) * m->row_bytes);
    char *p = dst;
    for (size_t left = m->row_bytes; left > 0;) {
        ssize_t got = pread(fd, p, left, at);
        if (got <= 0) return false;
        p += got, at += got, left -= (size_t)got;
    }
    return true;
}

static noreturn void refuse(const char *path, const char *role, const char *hint, const char *what) {
    FEED_INPUT_ERROR(hint, "%s: feature cache %s %s", role, path, what);
}

feed_cache *feed_cache_open(const char *path, const feed_cache_spec *expect, const char *role) {
    char partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", path);
    if (access(path, R_OK) != 0)
        FEED_INPUT_ERROR(access(partial, F_OK) == 0
                             ? "a cache job was interrupted: run it again (the same command resumes it)"
                             : "write the caches first: mpirun -np N feed_mpi <config> run.mode=cache (docs/cache.md)",
                         "%s: no feature cache %s%s", role, path,
                         access(partial, F_OK) == 0 ? " (only an unfinished .partial file)" : "");
    h5_quiet q;
    h5_quiet_begin(&q);
    feed_cache *c = feed_xcalloc(1, sizeof *c, "feature cache");
    c->path = feed_xstrdup(path);
    c->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (c->file < 0)
        refuse(path, role, "the file is damaged: write the cache again", feed_fmt("cannot be opened by HDF5 (%s)", h5_error_detail()));
    char *format = NULL, why[600];
    int64_t complete = 0;
    if (h5_attr_read_str(c->file, "format", &format) != 1 || strcmp(format, FEED_CACHE_FORMAT) != 0)
        refuse(path, role, "give cache.dir the folder run.mode = cache wrote", "is not a feed_mpi feature cache");
    free(format);
    if (h5_attr_read_i64(c->file, "complete", &complete) != 1 || complete != 1)
        refuse(path, role, "run the cache job again: it resumes", "is incomplete");
    if (cache_read_spec(c->file, &c->spec, why, sizeof why) < 0) refuse(path, role, "write the cache again", why);
    const char *hint;
    if (cache_spec_mismatch(&c->spec, expect, why, sizeof why, &hint)) refuse(path, role, hint, why);

    c->n_blocks = cache_blocks_of(&c->spec.layout, c->block);
    cache_types(c->spec.dtype, &c->file_type, &c->mem_type);
    size_t largest = 0;
    /* no chunk cache: a row of an uncompressed chunk is read directly from the file (page cache),
       not the whole chunk it sits in */
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 0, c->spec.compress ? 1 << 20 : 0, 1.0);
    for (int i = 0; i < c->n_blocks; i++) {
        c->dset[i] = H5Dopen2(c->file, c->block[i].name, dapl);
        if (c->dset[i] < 0) refuse(path, role, "write the cache again", feed_fmt("has no dataset /%s", c->block[i].name));
        if (c->block[i].elems > largest) largest = c->block[i].elems;
    }
    H5Pclose(dapl);
    c->augment = H5Dopen2(c->file, "augment", H5P_DEFAULT);
    hid_t samples = H5Dopen2(c->file, "samples", H5P_DEFAULT);
    if (c->augment < 0 || samples < 0) refuse(path, role, "write the cache again", "has no /augment or /samples");
    c->samples = feed_xmalloc(sizeof(int64_t) * (size_t)c->spec.n_samples, "cached sample indices");
    hid_t sp = H5Dget_space(samples);
    hsize_t ns = 0;
    H5Sget_simple_extent_dims(sp, &ns, NULL);
    H5Sclose(sp);
    if ((int64_t)ns != c->spec.n_samples || H5Dread(samples, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->samples) < 0)
        refuse(path, role, "write the cache again", "has a damaged /samples");
    H5Dclose(samples);
    for (int64_t r = 1; r < c->spec.n_samples; r++)
        if (c->samples[r] <= c->samples[r - 1]) refuse(path, role, "write the cache again", "has a damaged /samples");

    /* direct row reads: the file's descriptor (sec2 driver) and every chunk's address */
    c->fd = -1;
    void *handle = NULL;
    size_t esize = feed_wire_dtype_size((feed_wire_dtype)c->spec.dtype);
    bool direct = !c->spec.compress && H5Fget_vfd_handle(c->file, H5P_DEFAULT, &handle) >= 0 && handle &&
                  map_rows(c->augment, c->spec.views, c->spec.n_samples, 3 * sizeof(int32_t), &c->aug_map);
    for (int i = 0; direct && i < c->n_blocks; i++)
        direct = map_rows(c->dset[i], c->spec.views, c->spec.n_samples, c->block[i].elems * esize, &c->map[i]);
    if (direct) c->fd = *(int *)handle;
    /* the student's payload: its blocks taken from the stored ones of the same name */
    feed_teacher_layout want = c->spec.layout;
    want.outputs = expect->layout.outputs;
    c->n_want = cache_blocks_of(&want, c->want);
    c->want_batch = expect->layout.batch;
    for (int i = 0; i < c->n_want; i++)
        for (int k = 0; k < c->n_blocks; k++)
            if (strcmp(c->want[i].name, c->block[k].name) == 0) c->want_from[i] = k;
    c->rows_buf = feed_xmalloc(largest * sizeof(float) * (size_t)c->want_batch, "cache rows");
    c->aug_buf = feed_xmalloc(3 * sizeof(int32_t) * (size_t)c->want_batch, "cache augmentation");
    c->order = feed_xmalloc(sizeof(int) * (size_t)c->want_batch, "cache row order");
    h5_quiet_end(&q);
    return c;
}

bool feed_cache_is(const char *path, const feed_cache_spec *expect, char *why, size_t cap) {
    h5_quiet q;
    h5_quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *format = NULL;
    int64_t complete = 0;
    feed_cache_spec have;
    const char *hint;
    bool ok = f >= 0 && h5_attr_read_str(f, "format", &format) == 1 && strcmp(format, FEED_CACHE_FORMAT) == 0 &&
              h5_attr_read_i64(f, "complete", &complete) == 1 && complete == 1 &&
              cache_read_spec(f, &have, why, cap) == 0 && !cache_spec_mismatch(&have, expect, why, cap, &hint) &&
              have.n_samples == expect->n_samples && have.layout.outputs == expect->layout.outputs;
    free(format);
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(&q);
    return ok;
}

const int64_t *feed_cache_samples(const feed_cache *c, int64_t *n) {
    *n = c->spec.n_samples;
    return c->samples;
}

/* Selects rows rows[order[0..n-1]] (increasing) of view v of a (V, N, row...) dataset. */
static hid_t rows_space(hid_t d, int v, const int64_t *rows, const int *order, int n, const hsize_t row_dims[3]) {
    hid_t fs = H5Dget_space(d);
    H5Sselect_none(fs);
    hsize_t count[5] = {1, 1, row_dims[0], row_dims[1], row_dims[2]};
    for (int p = 0; p < n; p++) {
        hsize_t start[5] = {(hsize_t)v, (hsize_t)rows[order[p]], 0, 0, 0};
        H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL);
    }
    return fs;
}

/* The direct path of feed_cache_read_rows: one pread per row and output. */
static bool pread_rows(feed_cache *c, int v, const int64_t *rows, int n, float *payload, int32_t *aug) {
    size_t B = (size_t)c->want_batch;
    for (int i = 0; i < c->n_want; i++) {
        const cache_block *w = &c->want[i];
        const row_map *m = &c->map[c->want_from[i]];
        for (int j = 0; j < n; j++) {
            float *dst = payload + w->offset * B + (size_t)j * w->elems;
            void *into = c->spec.dtype == FEED_WIRE_FP32 ? (void *)dst : c->rows_buf;
            if (!pread_row(c->fd, m, v, rows[j], into)) return false;
            if (c->spec.dtype != FEED_WIRE_FP32) feed_wire_decode((feed_wire_dtype)c->spec.dtype, c->rows_buf, dst, w->elems);
        }
    }
    for (int j = 0; j < n; j++)
        if (!pread_row(c->fd, &c->aug_map, v, rows[j], aug + 3 * j)) return false;
    return true;
}

void feed_cache_read_rows(feed_cache *c, int v, const int64_t *rows, int n, float *payload, int32_t *aug) {
    if (c->fd >= 0) {
        if (!pread_rows(c, v, rows, n, payload, aug))
            FEED_FAIL("the file is damaged or the disk failed: write the cache again",
                      "feature cache %s: cannot read the rows of view %d: %s", c->path, v, strerror(errno));
        return;
    }
    /* one read per dataset: the rows in file order into a scratch buffer, then to their slots */
    for (int j = 0; j < n; j++) c->order[j] = j;
    for (int j = 1; j < n; j++) /* insertion sort by row: n is one minibatch */
        for (int p = j; p > 0 && rows[c->order[p - 1]] > rows[c->order[p]]; p--) {
            int t = c->order[p];
            c->order[p] = c->order[p - 1], c->order[p - 1] = t;
        }
    size_t B = (size_t)c->want_batch, esize = feed_wire_dtype_size((feed_wire_dtype)c->spec.dtype);
    for (int i = 0; i < c->n_want; i++) {
        const cache_block *w = &c->want[i], *b = &c->block[c->want_from[i]];
        hsize_t dims[3] = {b->dims[0], b->rank == 3 ? b->dims[1] : 1, b->rank == 3 ? b->dims[2] : 1};
        hid_t fs = rows_space(c->dset[c->want_from[i]], v, rows, c->order, n, dims);
        hsize_t total = (hsize_t)n * b->elems;
        hid_t ms = H5Screate_simple(1, &total, NULL);
        herr_t st = H5Dread(c->dset[c->want_from[i]], c->mem_type, ms, fs, H5P_DEFAULT, c->rows_buf);
        H5Sclose(ms), H5Sclose(fs);
        if (st < 0)
            FEED_FAIL("the file is damaged or the disk failed: write the cache again",
                      "feature cache %s: cannot read %d rows of view %d of /%s", c->path, n, v, b->name);
        for (int p = 0; p < n; p++) {
            const char *src = (const char *)c->rows_buf + (size_t)p * b->elems * esize;
            float *dst = payload + w->offset * B + (size_t)c->order[p] * w->elems;
            if (c->spec.dtype == FEED_WIRE_FP32) memcpy(dst, src, b->elems * sizeof(float));
            else feed_wire_decode((feed_wire_dtype)c->spec.dtype, src, dst, b->elems);
        }
    }
    hsize_t three[3] = {3, 1, 1}, total = 3 * (hsize_t)n;
    hid_t fs = rows_space(c->augment, v, rows, c->order, n, three), ms = H5Screate_simple(1, &total, NULL);
    herr_t st = H5Dread(c->augment, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, c->aug_buf);
    H5Sclose(ms), H5Sclose(fs);
    if (st < 0) FEED_FAIL("write the cache again", "feature cache %s: cannot read /augment", c->path);
    for (int p = 0; p < n; p++) memcpy(aug + 3 * c->order[p], c->aug_buf + 3 * p, 3 * sizeof(int32_t));
}

void feed_cache_close(feed_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_blocks; i++)
        if (c->dset[i] > 0) H5Dclose(c->dset[i]);
    if (c->augment > 0) H5Dclose(c->augment);
    if (c->spec.dtype == FEED_WIRE_FP16 && c->file_type > 0) H5Tclose(c->file_type);
    if (c->file > 0) H5Fclose(c->file);
    for (int i = 0; i < CACHE_MAX_BLOCKS; i++) free(c->map[i].addr);
    free(c->aug_map.addr);
    free(c->path), free(c->partial), free(c->samples), free(c->rows_buf), free(c->aug_buf), free(c->order);
    free(c->wire), free(c->pad), free(c);
}
