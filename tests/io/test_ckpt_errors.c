/* test_ckpt_errors.c - every way a checkpoint can be bad gives a clear error: the exit code (2
 * for bad input, 1 for a failed write), the file, the tensor or attribute, and a hint. Each
 * case runs in a forked child whose output is captured. Failed writes leave the previous file
 * as it was and no .tmp behind. */
#include "ckpt_test_util.h"
#include "feed_test.h"

#include "feed/check.h"

#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char *g_dir;

/* ---- what the children do ------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    const char *group, *key;
    feed_ckpt_shape shape;
    const char *arch;
    int64_t num_classes, in_channels;
} probe;

static void do_open(void *arg) { feed_ckpt_close(feed_ckpt_open(((probe *)arg)->path)); }

static void do_require(void *arg) {
    probe *p = arg;
    feed_ckpt *c = feed_ckpt_open(p->path);
    feed_ckpt_require_model(c, p->arch, p->num_classes, p->in_channels);
    feed_ckpt_close(c);
}

static void do_read(void *arg) {
    probe *p = arg;
    feed_ckpt *c = feed_ckpt_open(p->path);
    void *buf = malloc((size_t)feed_ckpt_shape_numel(&p->shape) * 8 + 8);
    feed_ckpt_read(c, p->group, p->key, p->shape, buf);
    free(buf);
    feed_ckpt_close(c);
}

static void do_shape_of(void *arg) {
    probe *p = arg;
    feed_ckpt *c = feed_ckpt_open(p->path);
    feed_ckpt_shape_of(c, p->group, p->key);
    feed_ckpt_close(c);
}

static void do_attr_as_int(void *arg) {
    probe *p = arg;
    feed_ckpt *c = feed_ckpt_open(p->path);
    int64_t v;
    feed_ckpt_attr_i64(c, NULL, p->key, &v);
    feed_ckpt_close(c);
}

static void do_write_twice(void *arg) {
    feed_ckpt_writer *w = feed_ckpt_begin(((probe *)arg)->path, &sample_meta);
    feed_ckpt_put_i64(w, "train", "lr_step", 1);
    feed_ckpt_put_i64(w, "train", "lr_step", 2);
    feed_ckpt_commit(w);
}

static void do_write_bad_key(void *arg) {
    feed_ckpt_writer *w = feed_ckpt_begin(((probe *)arg)->path, &sample_meta);
    feed_ckpt_put_i64(w, "model", "layer1..weight", 1);
    feed_ckpt_commit(w);
}

static void do_write_reserved_attr(void *arg) {
    feed_ckpt_writer *w = feed_ckpt_begin(((probe *)arg)->path, &sample_meta);
    feed_ckpt_put_attr_i64(w, NULL, "epoch", 3);
    feed_ckpt_commit(w);
}

/* A model that diverged: a NaN among finite weights. */
static void do_write_nonfinite(void *arg) {
    feed_ckpt_writer *w = feed_ckpt_begin(((probe *)arg)->path, &sample_meta);
    float weights[300];
    for (int i = 0; i < 300; i++) weights[i] = 0.01f * (float)i;
    weights[257] = NAN;
    feed_ckpt_put(w, "model", "conv1.weight", (feed_ckpt_shape){FEED_CKPT_F32, 1, {300}}, weights);
    feed_ckpt_commit(w);
}

/* A disk that fills up: the file size limit makes write() fail with EFBIG. */
static void do_write_disk_full(void *arg) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {64 * 1024, 64 * 1024};
    setrlimit(RLIMIT_FSIZE, &lim);
    feed_ckpt_writer *w = feed_ckpt_begin(((probe *)arg)->path, &sample_meta);
    enum { N = 256 * 1024 };
    float *big = calloc(N, sizeof *big);
    for (int i = 0; i < 4; i++) feed_ckpt_put(w, "model", feed_fmt("big%d", i), (feed_ckpt_shape){FEED_CKPT_F32, 1, {N}}, big);
    feed_ckpt_commit(w);
    free(big);
}

/* ---- checking their output --------------------------------------------------------------------------- */

/* Runs fn in a child; expects exit code `code` and every needle (NULL-terminated) in the output. */
static void expect_error(const char *what, void (*fn)(void *), probe *arg, int code, const char *needle, ...) {
    char out[8192];
    int rc = run_in_child(fn, arg, out, sizeof out);
    feed_test_checks++;
    if (rc != code) feed_test_fail(__FILE__, __LINE__, "%s: exit code %d, expected %d; output:\n%s", what, rc, code, out);
    va_list ap;
    va_start(ap, needle);
    for (const char *n = needle; n; n = va_arg(ap, const char *)) {
        feed_test_checks++;
        if (!strstr(out, n)) feed_test_fail(__FILE__, __LINE__, "%s: '%s' not in the output:\n%s", what, n, out);
    }
    va_end(ap);
    feed_test_checks++;
    if (!strstr(out, "hint: ") || !strstr(out, "feed_mpi: error: "))
        feed_test_fail(__FILE__, __LINE__, "%s: no 'feed_mpi: error:' and 'hint:' lines:\n%s", what, out);
    if (getenv("FEED_TEST_VERBOSE")) printf("--- %s (exit %d)\n%s", what, rc, out);
}

/* A fresh copy of the sample checkpoint named name. */
static char *fresh(const char *name) {
    char *path = feed_xstrdup(feed_fmt("%s/%s", g_dir, name));
    write_sample_checkpoint(path, 7, 2737);
    return path;
}

/* ---- tampering with HDF5 directly -------------------------------------------------------------------- */

static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "FAIL: cannot open %s for tampering\n", path);
        exit(1);
    }
    return f;
}

static void set_attr_str(const char *path, const char *name, const char *value) {
    hid_t f = open_rw(path);
    H5Adelete(f, name);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, &value);
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(f);
}

static void set_attr_i64(const char *path, const char *name, int64_t value) {
    hid_t f = open_rw(path);
    H5Adelete(f, name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &value);
    H5Aclose(a);
    H5Sclose(space);
    H5Fclose(f);
}

static void delete_attr(const char *path, const char *object, const char *name) {
    hid_t f = open_rw(path);
    if (H5Adelete_by_name(f, object, name, H5P_DEFAULT) < 0) fprintf(stderr, "FAIL: cannot delete %s.%s\n", object, name);
    H5Fclose(f);
}

/* ---- the cases -------------------------------------------------------------------------------------- */

static void bad_files(void) {
    probe p = {0};
    p.path = feed_fmt("%s/does_not_exist.h5", g_dir);
    expect_error("missing file", do_open, &p, 2, "cannot open checkpoint", p.path, "No such file", NULL);

    char *text = feed_xstrdup(feed_fmt("%s/notes.h5", g_dir));
    feed_test_write_file(text, "[model]\narch = resnet20\n", 24);
    p.path = text;
    expect_error("not HDF5", do_open, &p, 2, "is not an HDF5 file", text, NULL);

    char *cut = fresh("truncated.h5");
    truncate_file(cut, file_size(cut) * 6 / 10);
    p.path = cut;
    expect_error("truncated", do_open, &p, 2, "cannot be opened by HDF5", cut, "truncated", NULL);

    char *flipped = fresh("flipped.h5");
    flip_byte(flipped, dataset_offset(flipped, "/model/layer1/0/conv1/weight") + 1001, 0x10);
    p.path = flipped;
    expect_error("flipped weight byte", do_open, &p, 2, "is corrupt", "tensor 'model/layer1/0/conv1/weight'",
                 "CRC32", flipped, "older checkpoint", NULL);
    /* the same, non-fatally */
    feed_ckpt_error err;
    EXPECT(feed_ckpt_try_open(flipped, &err) == NULL);
    EXPECT_STR_CONTAINS(err.message, "model/layer1/0/conv1/weight");

    char *flipped_scalar = fresh("flipped_scalar.h5");
    flip_byte(flipped_scalar, dataset_offset(flipped_scalar, "/train/lr_step"), 0x01);
    p.path = flipped_scalar;
    expect_error("flipped int64 scalar", do_open, &p, 2, "is corrupt", "tensor 'train/lr_step'", NULL);

    /* a flip in HDF5's own (checksummed) metadata: the superblock's checksum covers it */
    char *flipped_meta = fresh("flipped_superblock.h5");
    flip_byte(flipped_meta, 20, 0x04);
    p.path = flipped_meta;
    expect_error("flipped superblock byte", do_open, &p, 2, "cannot be opened by HDF5", flipped_meta, NULL);

    char *foreign = fresh("foreign.h5");
    set_attr_str(foreign, "format", "pytorch");
    p.path = foreign;
    expect_error("wrong format", do_open, &p, 2, "not a feed_mpi checkpoint", "'pytorch'", foreign, NULL);
    delete_attr(foreign, "/", "format");
    expect_error("no format", do_open, &p, 2, "not a feed_mpi checkpoint", "missing", NULL);

    char *future = fresh("future.h5");
    set_attr_i64(future, "format_version", 99);
    p.path = future;
    expect_error("newer format_version", do_open, &p, 2, "format_version 99", "reads version 1", "newer feed_mpi", NULL);

    char *unfinished = fresh("unfinished.h5");
    delete_attr(unfinished, "/", "complete");
    p.path = unfinished;
    expect_error("no complete flag", do_open, &p, 2, "is incomplete", "'complete' is missing", NULL);
    set_attr_i64(unfinished, "complete", 0);
    expect_error("complete=0", do_open, &p, 2, "is incomplete", "not 1", NULL);

    char *no_arch = fresh("no_arch.h5");
    delete_attr(no_arch, "/", "arch");
    p.path = no_arch;
    expect_error("no arch attribute", do_open, &p, 2, "lacks the string root attribute 'arch'", NULL);

    char *no_crc = fresh("no_crc.h5");
    delete_attr(no_crc, "model/fc/bias", "crc32");
    p.path = no_crc;
    expect_error("no crc32", do_open, &p, 2, "tensor 'model/fc/bias' has no 'crc32' attribute", "zlib.crc32", NULL);

    /* A tensor whose shape claims 400 GB that the file does not hold is refused before the
       reader sizes a buffer by it. */
    char *claims = fresh("claims.h5");
    hid_t f = H5Fopen(claims, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[2] = {100000, 1000000}, chunk[2] = {1, 1000};
    hid_t space = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t d = H5Dcreate2(f, "/model/huge", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    EXPECT(d >= 0);
    float row[1000] = {0};
    hsize_t start[2] = {0, 0};
    hid_t mem = H5Screate_simple(2, chunk, NULL);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, chunk, NULL);
    EXPECT(H5Dwrite(d, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, row) >= 0);
    H5Sclose(mem), H5Dclose(d), H5Pclose(dcpl), H5Sclose(space), H5Fclose(f);
    p.path = claims;
    expect_error("shape beyond the stored bytes", do_open, &p, 2, "tensor 'model/huge'",
                 "is not stored in full in the file", claims, NULL);
    free(claims);
    free(text);
    free(cut);
    free(flipped);
    free(flipped_scalar);
    free(flipped_meta);
    free(foreign);
    free(future);
    free(unfinished);
    free(no_arch);
    free(no_crc);
}

static void wrong_expectations(void) {
    char *path = fresh("good.h5");
    probe p = {.path = path, .num_classes = -1, .in_channels = -1};
    p.arch = "resnet56";
    expect_error("wrong arch", do_require, &p, 2, "has arch resnet20 but the config asks for resnet56", path, NULL);
    p.arch = NULL;
    p.num_classes = 100;
    expect_error("wrong num_classes", do_require, &p, 2, "has num_classes 10 but the config asks for 100", NULL);
    p.num_classes = -1;
    p.in_channels = 1;
    expect_error("wrong in_channels", do_require, &p, 2, "has in_channels 3 but the config asks for 1", NULL);

    p.group = "model";
    p.key = "fc.bias2";
    p.shape = (feed_ckpt_shape){FEED_CKPT_F32, 1, {10}};
    expect_error("missing tensor", do_read, &p, 2, "has no tensor 'model/fc/bias2'", path, "ckpt_info.py", NULL);
    p.key = "layer9.0.conv1.weight";
    expect_error("missing group", do_read, &p, 2, "has no tensor 'model/layer9/0/conv1/weight'", NULL);
    expect_error("shape of missing", do_shape_of, &p, 2, "has no tensor 'model/layer9/0/conv1/weight'", NULL);
    p.key = "layer1";
    expect_error("group read as tensor", do_read, &p, 2, "has no tensor 'model/layer1'", NULL);

    p.key = "fc.weight";
    p.shape = (feed_ckpt_shape){FEED_CKPT_F32, 2, {100, 16}};
    expect_error("wrong shape", do_read, &p, 2,
                 "tensor 'model/fc/weight' is [10, 16] float32 but [100, 16] float32 is expected", NULL);
    p.shape = (feed_ckpt_shape){FEED_CKPT_F64, 2, {10, 16}};
    expect_error("wrong dtype", do_read, &p, 2, "is [10, 16] float32 but [10, 16] float64 is expected", NULL);
    p.group = "model";
    p.key = "bn1.num_batches_tracked";
    p.shape = (feed_ckpt_shape){FEED_CKPT_I64, 1, {1}};
    expect_error("scalar read as [1]", do_read, &p, 2, "is [] int64 but [1] int64 is expected", NULL);

    p.key = "note";
    expect_error("string attribute as int", do_attr_as_int, &p, 2, "attribute 'note' of '/' is not an integer", NULL);
    free(path);
}

/* Write failures: exit code 1, no .tmp left, the previous checkpoint byte for byte the same. */
static void failed_writes(void) {
    char *path = fresh("previous.h5");
    char *tmp = feed_ckpt_tmp_path(path);
    size_t n_before, n_after;
    unsigned char *before = read_whole_file(path, &n_before);
    probe p = {.path = path};

    expect_error("tensor written twice", do_write_twice, &p, 1, "tensor 'train/lr_step' is written twice",
                 "is unchanged", NULL);
    EXPECT(!file_exists(tmp));
    expect_error("bad key", do_write_bad_key, &p, 1, "empty component", NULL);
    EXPECT(!file_exists(tmp));
    expect_error("reserved attribute", do_write_reserved_attr, &p, 1, "attribute name 'epoch' is reserved", NULL);
    EXPECT(!file_exists(tmp));
    expect_error("non-finite tensor", do_write_nonfinite, &p, 1, "tensor 'model/conv1/weight' holds nan at element 257",
                 "is unchanged", "the values diverged", NULL);
    EXPECT(!file_exists(tmp));
    expect_error("disk full", do_write_disk_full, &p, 1, "cannot write checkpoint", path, "disk full", NULL);
    EXPECT(!file_exists(tmp));

    unsigned char *after = read_whole_file(path, &n_after);
    feed_test_checks++;
    if (n_before != n_after || memcmp(before, after, n_before) != 0)
        feed_test_fail(__FILE__, __LINE__, "a failed write changed %s", path);
    feed_ckpt_close(feed_ckpt_open(path));

    p.path = feed_fmt("%s/no/such/folder/x.h5", g_dir);
    expect_error("missing folder", do_write_twice, &p, 1, "cannot write checkpoint", "no/such/folder/x.h5.tmp",
                 "No such file or directory", NULL);
    free(before);
    free(after);
    free(tmp);
    free(path);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* tampering deletes attributes that may be absent */
    g_dir = test_scratch_dir("errors");
    bad_files();
    wrong_expectations();
    failed_writes();
    test_remove_dir(g_dir);
    free(g_dir);
    return feed_test_finish("test_ckpt_errors");
}
