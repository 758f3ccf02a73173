/* ckpt_test_util.c - see ckpt_test_util.h */
#define _GNU_SOURCE /* mkdtemp, nftw */
#include "ckpt_test_util.h"

#include "feed/check.h"
#include "feed_test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *test_scratch_dir(const char *name) {
    const char *tmp = getenv("TMPDIR");
    char *templ = feed_xstrdup(feed_fmt("%s/feed_%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", name));
    if (!mkdtemp(templ)) {
        fprintf(stderr, "FAIL: mkdtemp(%s): %s\n", templ, strerror(errno));
        exit(1);
    }
    return templ;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    return remove(path);
}

void test_remove_dir(const char *dir) {
    if (strstr(dir, "/feed_") == NULL) return; /* only our own scratch folders */
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the sample checkpoint ------------------------------------------------------------------- */

#define F32 FEED_CKPT_F32
const sample_tensor sample_tensors[] = {
    {"model", "conv1.weight", {F32, 4, {16, 3, 3, 3}}},
    {"model", "bn1.weight", {F32, 1, {16}}},
    {"model", "bn1.bias", {F32, 1, {16}}},
    {"model", "bn1.running_mean", {F32, 1, {16}}},
    {"model", "bn1.running_var", {F32, 1, {16}}},
    {"model", "bn1.num_batches_tracked", {FEED_CKPT_I64, 0, {0}}},
    {"model", "layer1.0.conv1.weight", {F32, 4, {16, 16, 3, 3}}},
    {"model", "fc.weight", {F32, 2, {10, 16}}},
    {"model", "fc.bias", {F32, 1, {10}}},
    {"ntl/0", "conv.weight", {F32, 4, {16, 16, 1, 1}}},
    {"optim/momentum", "conv1.weight", {F32, 4, {16, 3, 3, 3}}},
    {"train", "lr_step", {FEED_CKPT_I64, 0, {0}}},
    {"train", "lr", {FEED_CKPT_F64, 0, {0}}},
    {"train", "rng_counters", {FEED_CKPT_U64, 1, {4}}},
    {"train", "permutation", {FEED_CKPT_I32, 1, {100}}},
    {"train", "loader_flags", {FEED_CKPT_U8, 1, {7}}},
    {"train", "words", {FEED_CKPT_U32, 1, {3}}},
    {"train", "history", {FEED_CKPT_F64, 1, {5}}},
    {"extra/nested", "empty", {F32, 1, {0}}},
    {"extra", "cube", {FEED_CKPT_F64, 3, {2, 3, 4}}},
};
const size_t sample_tensor_count = sizeof sample_tensors / sizeof sample_tensors[0];

const feed_ckpt_meta sample_meta = {
    .arch = "resnet20",
    .dataset = "fashion_mnist",
    .num_classes = 10,
    .in_channels = 3,
    .epoch = 7,
    .step = 2737,
    .seed = 42,
    .config_ini = "[model]\narch = resnet20 ; µ-test ✓\n\n[train]\nepochs = 200\n",
};

double sample_value(size_t t, int64_t i) {
    double base = (double)((i * 7 + (int64_t)t * 13) % 251);
    switch (sample_tensors[t].shape.dtype) {
    case FEED_CKPT_F32:
    case FEED_CKPT_F64: return (base - 125) * 0.25;
    case FEED_CKPT_I32: return base - 125;
    case FEED_CKPT_I64: return base - 125 + 1099511627776.0; /* + 2^40 */
    case FEED_CKPT_U8: return base;
    case FEED_CKPT_U32: return base + 2147483648.0; /* + 2^31 */
    case FEED_CKPT_U64: return base + 1099511627776.0;
    default: return 0;
    }
}

void *sample_data(size_t t) {
    const feed_ckpt_shape *s = &sample_tensors[t].shape;
    int64_t n = feed_ckpt_shape_numel(s);
    void *data = feed_xmalloc((size_t)n * feed_ckpt_dtype_size(s->dtype), "sample tensor");
    for (int64_t i = 0; i < n; i++) {
        double v = sample_value(t, i);
        switch (s->dtype) {
        case FEED_CKPT_F32: ((float *)data)[i] = (float)v; break;
        case FEED_CKPT_F64: ((double *)data)[i] = v; break;
        case FEED_CKPT_I32: ((int32_t *)data)[i] = (int32_t)v; break;
        case FEED_CKPT_I64: ((int64_t *)data)[i] = (int64_t)v; break;
        case FEED_CKPT_U8: ((uint8_t *)data)[i] = (uint8_t)v; break;
        case FEED_CKPT_U32: ((uint32_t *)data)[i] = (uint32_t)v; break;
        case FEED_CKPT_U64: ((uint64_t *)data)[i] = (uint64_t)v; break;
        default: break;
        }
    }
    return data;
}

void write_sample_checkpoint(const char *path, int64_t epoch, int64_t step) {
    feed_ckpt_meta meta = sample_meta;
    meta.epoch = epoch;
    meta.step = step;
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    for (size_t t = 0; t < sample_tensor_count; t++) {
        void *data = sample_data(t);
        feed_ckpt_put(w, sample_tensors[t].group, sample_tensors[t].key, sample_tensors[t].shape, data);
        free(data);
    }
    feed_ckpt_put_attr_str(w, NULL, "note", "written by ckpt_test_util");
    feed_ckpt_put_attr_i64(w, NULL, "world_size", 4);
    feed_ckpt_put_attr_f64(w, "train", "best_error", 0.0625);
    feed_ckpt_put_attr_str(w, "model/fc/weight", "layout", "[out, in]");
    feed_ckpt_commit(w);
}

/* ---- child processes ---------------------------------------------------------------------------- */

int run_in_child(void (*fn)(void *arg), void *arg, char *out, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        char buf[4096];
        ssize_t got = read(fds[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t i = 0; i < got && n + 1 < cap; i++) out[n++] = buf[i];
    }
    out[n] = 0;
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ---- damage ----------------------------------------------------------------------------------------- */

void flip_byte(const char *path, long offset, unsigned char mask) {
    FILE *f = fopen(path, "r+b");
    unsigned char b;
    if (!f || fseek(f, offset, SEEK_SET) != 0 || fread(&b, 1, 1, f) != 1) {
        fprintf(stderr, "FAIL: cannot read byte %ld of %s\n", offset, path);
        exit(1);
    }
    b ^= mask;
    if (fseek(f, offset, SEEK_SET) != 0 || fwrite(&b, 1, 1, f) != 1 || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write byte %ld of %s\n", offset, path);
        exit(1);
    }
}

void truncate_file(const char *path, long size) {
    if (truncate(path, size) != 0) {
        fprintf(stderr, "FAIL: truncate(%s, %ld): %s\n", path, size, strerror(errno));
        exit(1);
    }
}

long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

bool file_exists(const char *path) { return access(path, F_OK) == 0; }

long dataset_offset(const char *path, const char *dataset) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, dataset, H5P_DEFAULT);
    haddr_t off = d < 0 ? HADDR_UNDEF : H5Dget_offset(d);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    if (off == HADDR_UNDEF) {
        fprintf(stderr, "FAIL: no offset for %s in %s\n", dataset, path);
        exit(1);
    }
    return (long)off;
}

unsigned char *read_whole_file(const char *path, size_t *size) {
    long n = file_size(path);
    FILE *f = fopen(path, "rb");
    if (n < 0 || !f) {
        fprintf(stderr, "FAIL: cannot read %s\n", path);
        exit(1);
    }
    unsigned char *data = feed_xmalloc((size_t)n, "file content");
    if (fread(data, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "FAIL: short read of %s\n", path);
        exit(1);
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}
