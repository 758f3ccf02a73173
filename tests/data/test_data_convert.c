/* test_data_convert.c - feed_convert on fixtures written in the official byte formats:
 * CIFAR-10, CIFAR-100 (fine and coarse), MNIST/Fashion-MNIST IDX (gzip and plain) convert
 * back to the arrays that were written; malformed inputs each give exit code 2, a clear
 * message, and no output file (nor a temporary one). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/dataset.h"
#include "feed_test.h"
#include "fixture_writers.h"

static char g_out[16384]; /* output of the last feed_convert run */
static char g_root[1024]; /* this test's scratch folder */

static int convert(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s", FEED_CONVERT_EXE, args);
    return feed_test_run(cmd, g_out, sizeof g_out);
}

static const char *path_in(const char *name) {
    static char bufs[4][2048];
    static int next = 0;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", g_root, name);
    return b;
}

/* ---- fixtures ---- */

static const int cifar10_train_counts[5] = {3, 2, 4, 1, 2}; /* 12 training images */
enum { CIFAR10_TRAIN = 12, CIFAR10_TEST = 3, C100_TRAIN = 7, C100_TEST = 4 };

static uint8_t label10(int s, int64_t n) { return (uint8_t)((n * 3 + s) % 10); }
static uint8_t fine100(int s, int64_t n) { return (uint8_t)((n * 37 + s * 11 + 99) % 100); }
static uint8_t coarse100(int s, int64_t n) { return (uint8_t)((n * 7 + s) % 20); }

/* CIFAR-10 binary files in dir; bad_label >= 0 puts that label into test record 1. */
static void make_cifar10(const char *dir, int bad_label) {
    fx_mkdir(dir);
    int64_t n = 0;
    for (int f = 0; f < 5; f++) {
        fx_buf b = {0};
        for (int i = 0; i < cifar10_train_counts[f]; i++, n++) {
            uint8_t lab = label10(0, n);
            fx_cifar_record(&b, &lab, 1, 0, n);
        }
        char name[4096];
        snprintf(name, sizeof name, "%s/data_batch_%d.bin", dir, f + 1);
        fx_write(name, &b, false);
        fx_free(&b);
    }
    fx_buf b = {0};
    for (int i = 0; i < CIFAR10_TEST; i++) {
        uint8_t lab = (i == 1 && bad_label >= 0) ? (uint8_t)bad_label : label10(1, i);
        fx_cifar_record(&b, &lab, 1, 1, i);
    }
    char name[4096];
    snprintf(name, sizeof name, "%s/test_batch.bin", dir);
    fx_write(name, &b, false);
    fx_free(&b);
}

static void make_cifar100(const char *dir, int bad_fine) {
    fx_mkdir(dir);
    for (int s = 0; s < 2; s++) {
        fx_buf b = {0};
        int count = s == 0 ? C100_TRAIN : C100_TEST;
        for (int i = 0; i < count; i++) {
            uint8_t labs[2] = {coarse100(s, i), fine100(s, i)};
            if (s == 0 && i == 2 && bad_fine >= 0) labs[1] = (uint8_t)bad_fine;
            fx_cifar_record(&b, labs, 2, s, i);
        }
        char name[4096];
        snprintf(name, sizeof name, "%s/%s", dir, s == 0 ? "train.bin" : "test.bin");
        fx_write(name, &b, false);
        fx_free(&b);
    }
}

enum { IDX_ROWS = 5, IDX_COLS = 7, IDX_TRAIN = 20, IDX_TEST = 6 };

static void idx_labels_of(int s, int n, uint8_t *labels) {
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)((i * 7 + s * 3) % 10);
}

static void make_idx(const char *dir, bool gzip) {
    fx_mkdir(dir);
    const char *prefix[2] = {"train", "t10k"};
    for (int s = 0; s < 2; s++) {
        int n = s == 0 ? IDX_TRAIN : IDX_TEST;
        uint8_t labels[IDX_TRAIN];
        idx_labels_of(s, n, labels);
        fx_buf im = {0}, lb = {0};
        fx_idx_images(&im, s, n, IDX_ROWS, IDX_COLS);
        fx_idx_labels(&lb, labels, n);
        char name[4096];
        snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte%s", dir, prefix[s], gzip ? ".gz" : "");
        fx_write(name, &im, gzip);
        snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte%s", dir, prefix[s], gzip ? ".gz" : "");
        fx_write(name, &lb, gzip);
        fx_free(&im);
        fx_free(&lb);
    }
}

/* ---- checks of a converted file ---- */

typedef uint8_t (*label_fn)(int s, int64_t n);

static void check_images(const feed_dataset *ds, int s, int64_t n, int h, int w, int c) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < c; k++)
                    bad += feed_dataset_image(ds, (feed_split)s, i)[(y * w + x) * c + k] != fx_pixel(s, i, y, x, k);
    EXPECT_INT_EQ(bad, 0);
}

/* Mean and population std of pixel/255 over the training images, computed directly. */
static void check_stats(const feed_dataset *ds) {
    for (int k = 0; k < ds->channels; k++) {
        double sum = 0, sum2 = 0, count = 0;
        for (int64_t i = 0; i < ds->split[0].n; i++)
            for (int y = 0; y < ds->height; y++)
                for (int x = 0; x < ds->width; x++) {
                    double v = fx_pixel(0, i, y, x, k) / 255.0;
                    sum += v;
                    count++;
                }
        double mean = sum / count;
        for (int64_t i = 0; i < ds->split[0].n; i++)
            for (int y = 0; y < ds->height; y++)
                for (int x = 0; x < ds->width; x++) {
                    double d = fx_pixel(0, i, y, x, k) / 255.0 - mean;
                    sum2 += d * d;
                }
        EXPECT_NEAR_REL(ds->mean[k], mean, 1e-6);
        EXPECT_NEAR_REL(ds->std[k], sqrt(sum2 / count), 1e-6);
    }
}

static void check_cifar10(const char *h5) {
    feed_dataset *ds = feed_dataset_open(h5);
    EXPECT(strcmp(ds->name, "cifar10") == 0);
    EXPECT_INT_EQ(ds->num_classes, 10);
    EXPECT(strcmp(ds->class_names[0], "airplane") == 0 && strcmp(ds->class_names[9], "truck") == 0);
    EXPECT_INT_EQ(ds->height, 32);
    EXPECT_INT_EQ(ds->width, 32);
    EXPECT_INT_EQ(ds->channels, 3);
    EXPECT_INT_EQ(ds->split[0].n, CIFAR10_TRAIN);
    EXPECT_INT_EQ(ds->split[1].n, CIFAR10_TEST);
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < ds->split[s].n; i++) EXPECT_INT_EQ(ds->split[s].labels[i], label10(s, i));
    check_images(ds, 0, CIFAR10_TRAIN, 32, 32, 3);
    check_images(ds, 1, CIFAR10_TEST, 32, 32, 3);
    check_stats(ds);
    EXPECT_INT_EQ(ds->num_sources, 6);
    EXPECT(strcmp(ds->source_files[0], "data_batch_1.bin") == 0 && strcmp(ds->source_files[5], "test_batch.bin") == 0);
    char hex[65];
    feed_sha256_file(path_in("c10/test_batch.bin"), hex);
    EXPECT(strcmp(ds->source_sha256[5], hex) == 0);
    feed_dataset_close(ds);
}

static void check_cifar100(const char *h5, bool coarse) {
    feed_dataset *ds = feed_dataset_open(h5);
    EXPECT(strcmp(ds->name, coarse ? "cifar100-coarse" : "cifar100") == 0);
    EXPECT_INT_EQ(ds->num_classes, coarse ? 20 : 100);
    EXPECT(strcmp(ds->class_names[coarse ? 19 : 99], coarse ? "vehicles_2" : "worm") == 0);
    EXPECT_INT_EQ(ds->split[0].n, C100_TRAIN);
    EXPECT_INT_EQ(ds->split[1].n, C100_TEST);
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < ds->split[s].n; i++)
            EXPECT_INT_EQ(ds->split[s].labels[i], coarse ? coarse100(s, i) : fine100(s, i));
    check_images(ds, 0, C100_TRAIN, 32, 32, 3);
    check_images(ds, 1, C100_TEST, 32, 32, 3);
    check_stats(ds);
    feed_dataset_close(ds);
}

static void check_idx(const char *h5, bool fashion) {
    feed_dataset *ds = feed_dataset_open(h5);
    EXPECT(strcmp(ds->name, fashion ? "fashion-mnist" : "mnist") == 0);
    EXPECT(strcmp(ds->class_names[9], fashion ? "Ankle boot" : "9") == 0);
    EXPECT_INT_EQ(ds->height, IDX_ROWS);
    EXPECT_INT_EQ(ds->width, IDX_COLS);
    EXPECT_INT_EQ(ds->channels, 1);
    uint8_t labels[IDX_TRAIN];
    for (int s = 0; s < 2; s++) {
        int n = s == 0 ? IDX_TRAIN : IDX_TEST;
        EXPECT_INT_EQ(ds->split[s].n, n);
        idx_labels_of(s, n, labels);
        for (int i = 0; i < n && i < ds->split[s].n; i++) EXPECT_INT_EQ(ds->split[s].labels[i], labels[i]);
        check_images(ds, s, n, IDX_ROWS, IDX_COLS, 1);
    }
    check_stats(ds);
    EXPECT_INT_EQ(ds->num_sources, 4);
    feed_dataset_close(ds);
}

/* ---- malformed inputs ---- */

/* feed_convert ARGS must fail with exit code 2, print `needle`, and leave no output. */
static void expect_rejected(const char *why, const char *args, const char *out, const char *needle) {
    int failures = feed_test_failures;
    int rc = convert(args);
    EXPECT_INT_EQ(rc, 2);
    EXPECT_STR_CONTAINS(g_out, needle);
    EXPECT(!fx_exists(out));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    EXPECT(!fx_exists(tmp));
    if (feed_test_failures != failures) fprintf(stderr, "  (case: %s)\n  output: %s\n", why, g_out);
}

static void truncate_file(const char *path, long drop) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fclose(f);
    EXPECT(truncate(path, len - drop) == 0);
}

static void overwrite_bytes(const char *path, long offset, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    EXPECT(f != NULL);
    if (!f) return;
    fseek(f, offset, SEEK_SET);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static void test_malformed(void) {
    char out[2048];
    snprintf(out, sizeof out, "%s", path_in("bad.h5"));
    char args[4096];
    /* CIFAR-10: truncated batch, label out of range, missing batch, CIFAR-100 records */
    make_cifar10(path_in("b1"), -1);
    truncate_file(path_in("b1/data_batch_3.bin"), 100);
    snprintf(args, sizeof args, "cifar10 %s %s", path_in("b1"), out);
    expect_rejected("truncated CIFAR-10 batch", args, out, "not a whole number of 3073-byte CIFAR-10 records");

    make_cifar10(path_in("b2"), 10);
    snprintf(args, sizeof args, "cifar10 %s %s", path_in("b2"), out);
    expect_rejected("CIFAR-10 label 10", args, out, "record 1: label 10 out of range [0, 10)");

    make_cifar10(path_in("b3"), -1);
    unlink(path_in("b3/data_batch_4.bin"));
    snprintf(args, sizeof args, "cifar10 %s %s", path_in("b3"), out);
    expect_rejected("missing CIFAR-10 batch", args, out, "data_batch_4.bin");

    make_cifar100(path_in("b4"), -1);
    EXPECT(rename(path_in("b4/train.bin"), path_in("b4/data_batch_1.bin")) == 0);
    for (int f = 2; f <= 5; f++) {
        char name[64];
        snprintf(name, sizeof name, "b4/data_batch_%d.bin", f);
        fx_buf empty = {0};
        fx_append(&empty, "x", 1);
        fx_write(path_in(name), &empty, false);
        fx_free(&empty);
    }
    snprintf(args, sizeof args, "cifar10 %s %s", path_in("b4"), out);
    expect_rejected("CIFAR-100 records given as CIFAR-10 (wrong record size)", args, out, "is this a CIFAR-100 file");

    make_cifar100(path_in("b5"), 100);
    snprintf(args, sizeof args, "cifar100 %s %s", path_in("b5"), out);
    expect_rejected("CIFAR-100 fine label 100", args, out, "label 100 out of range [0, 100)");

    /* IDX: wrong magic, truncated (plain and gzip), extra bytes, label range, missing, counts */
    make_idx(path_in("i1"), false);
    uint8_t labels_magic[4] = {0, 0, 8, 1};
    overwrite_bytes(path_in("i1/train-images-idx3-ubyte"), 0, labels_magic, 4);
    snprintf(args, sizeof args, "mnist %s %s", path_in("i1"), out);
    expect_rejected("IDX images with the labels magic", args, out, "wrong magic number 0x00000801, expected 0x00000803");

    make_idx(path_in("i2"), false);
    truncate_file(path_in("i2/t10k-images-idx3-ubyte"), 10);
    snprintf(args, sizeof args, "mnist %s %s", path_in("i2"), out);
    expect_rejected("truncated plain IDX", args, out, "ends after");

    make_idx(path_in("i3"), true);
    truncate_file(path_in("i3/train-images-idx3-ubyte.gz"), 30);
    snprintf(args, sizeof args, "fashion-mnist %s %s", path_in("i3"), out);
    expect_rejected("truncated gzip IDX", args, out, "truncated or corrupt");

    make_idx(path_in("i4"), false);
    {
        uint8_t rows = IDX_ROWS - 1; /* header says 4 rows, the data holds 5: wrong record size */
        overwrite_bytes(path_in("i4/train-images-idx3-ubyte"), 11, &rows, 1);
    }
    snprintf(args, sizeof args, "mnist %s %s", path_in("i4"), out);
    expect_rejected("IDX record size smaller than the data", args, out, "extra bytes");

    make_idx(path_in("i5"), false);
    {
        uint8_t twelve = 12;
        overwrite_bytes(path_in("i5/t10k-labels-idx1-ubyte"), 8 + 3, &twelve, 1);
    }
    snprintf(args, sizeof args, "mnist %s %s", path_in("i5"), out);
    expect_rejected("IDX label 12", args, out, "label 3 is 12, out of range [0, 10)");

    make_idx(path_in("i6"), true);
    unlink(path_in("i6/t10k-labels-idx1-ubyte.gz"));
    snprintf(args, sizeof args, "mnist %s %s", path_in("i6"), out);
    expect_rejected("missing IDX labels", args, out, "missing file");

    make_idx(path_in("i7"), false);
    {
        fx_buf lb = {0};
        uint8_t labels[IDX_TEST - 1] = {0};
        fx_idx_labels(&lb, labels, IDX_TEST - 1);
        fx_write(path_in("i7/t10k-labels-idx1-ubyte"), &lb, false);
        fx_free(&lb);
    }
    snprintf(args, sizeof args, "mnist %s %s", path_in("i7"), out);
    expect_rejected("IDX count mismatch", args, out, "holds 6 images but");

    snprintf(args, sizeof args, "cifar10 %s %s", path_in("does-not-exist"), out);
    expect_rejected("missing folder", args, out, "does-not-exist");
    snprintf(args, sizeof args, "svhn %s %s", path_in("i1"), out);
    expect_rejected("unknown format", args, out, "unknown format 'svhn'");
}

/* An existing output is kept unless --force. */
static void test_overwrite(void) {
    char out[2048];
    snprintf(out, sizeof out, "%s", path_in("keep.h5"));
    feed_test_write_file(out, "precious", 8);
    char args[4096];
    snprintf(args, sizeof args, "mnist %s %s", path_in("gz"), out);
    EXPECT_INT_EQ(convert(args), 2);
    EXPECT_STR_CONTAINS(g_out, "already exists");
    FILE *f = fopen(out, "rb");
    char buf[16] = {0};
    EXPECT(f && fread(buf, 1, sizeof buf, f) == 8 && memcmp(buf, "precious", 8) == 0);
    if (f) fclose(f);
    snprintf(args, sizeof args, "mnist %s %s --force", path_in("gz"), out);
    EXPECT_INT_EQ(convert(args), 0);
    check_idx(out, false);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "%s/convert_fixtures", FEED_TEST_WORKDIR);
    fx_remove_tree(g_root);
    fx_mkdir(g_root);
    char args[4096];

    /* SHA-256 known answer (FIPS 180-2 "abc") for the source checksums. */
    char hex[65];
    feed_sha256("abc", 3, hex);
    EXPECT(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

    make_cifar10(path_in("c10"), -1);
    snprintf(args, sizeof args, "cifar10 %s %s", path_in("c10"), path_in("c10.h5"));
    EXPECT_INT_EQ(convert(args), 0);
    EXPECT_STR_CONTAINS(g_out, "wrote");
    check_cifar10(path_in("c10.h5"));

    /* The official archive's folder one level down is found too. */
    fx_mkdir(path_in("c10up"));
    EXPECT(rename(path_in("c10"), path_in("c10up/cifar-10-batches-bin")) == 0);
    snprintf(args, sizeof args, "cifar10 %s %s", path_in("c10up"), path_in("c10b.h5"));
    EXPECT_INT_EQ(convert(args), 0);
    EXPECT(rename(path_in("c10up/cifar-10-batches-bin"), path_in("c10")) == 0);
    check_cifar10(path_in("c10b.h5"));

    make_cifar100(path_in("c100"), -1);
    snprintf(args, sizeof args, "cifar100 %s %s", path_in("c100"), path_in("c100.h5"));
    EXPECT_INT_EQ(convert(args), 0);
    check_cifar100(path_in("c100.h5"), false);
    snprintf(args, sizeof args, "cifar100 %s %s --coarse", path_in("c100"), path_in("c100c.h5"));
    EXPECT_INT_EQ(convert(args), 0);
    check_cifar100(path_in("c100c.h5"), true);

    make_idx(path_in("gz"), true);
    snprintf(args, sizeof args, "fashion-mnist %s %s", path_in("gz"), path_in("fm.h5"));
    EXPECT_INT_EQ(convert(args), 0);
    check_idx(path_in("fm.h5"), true);
    make_idx(path_in("plain"), false);
    snprintf(args, sizeof args, "mnist %s %s", path_in("plain"), path_in("mnist.h5"));
    EXPECT_INT_EQ(convert(args), 0);
    check_idx(path_in("mnist.h5"), false);

    test_malformed();
    test_overwrite();
    if (feed_test_failures == 0) fx_remove_tree(g_root);
    return feed_test_finish("test_data_convert");
}
