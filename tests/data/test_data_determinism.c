/* test_data_determinism.c - separate processes produce bit-identical batches for the same
 * (seed, epoch, step), whatever their prefetching and request order; another seed gives
 * different batches. Also: feed_dataset_open names the file and object of a bad file. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_hash.h"
#include "feed_test.h"
#include "feed/dataset.h"

static char g_out[3][8192];

static int run_hashes(int slot, const char *file, const char *seed, const char *depth, const char *threads,
                      const char *extra) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %s %s %s %s", DATA_BATCH_HASHES_EXE, file, seed, depth, threads, extra);
    return feed_test_run(cmd, g_out[slot], sizeof g_out[slot]);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Every line of a differs from the same line of b. */
static int lines_all_differ(const char *a, const char *b) {
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        if (!ea || !eb) return 0;
        if (ea - a == eb - b && memcmp(a, b, (size_t)(ea - a)) == 0) return 0;
        a = ea + 1;
        b = eb + 1;
    }
    return 1;
}

/* feed_loader_bench opens the file with feed_dataset_open: a broken file must fail with
 * exit code 2 and a message naming the file and the missing object. */
static void test_open_errors(const char *good) {
    char bad[4096], cmd[8192], out[8192];
    snprintf(bad, sizeof bad, "%s/determinism_broken.h5", FEED_TEST_WORKDIR);
    bh_write_synthetic(bad);
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT(f >= 0);
    EXPECT(H5Ldelete(f, "/test/labels", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    snprintf(cmd, sizeof cmd, "%s --seconds 1 %s", FEED_LOADER_BENCH_EXE, bad);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, "missing dataset /test/labels");
    EXPECT_STR_CONTAINS(out, "determinism_broken.h5");

    snprintf(cmd, sizeof cmd, "%s --seconds 1 %s/no_such_file.h5", FEED_LOADER_BENCH_EXE, FEED_TEST_WORKDIR);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, "no_such_file.h5");

    char text_file[1200];
    snprintf(text_file, sizeof text_file, "%s/determinism_text.h5", FEED_TEST_WORKDIR);
    feed_test_write_file(text_file, "not hdf5 at all\n", 16);
    snprintf(cmd, sizeof cmd, "%s --seconds 1 %s", FEED_LOADER_BENCH_EXE, text_file);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, "is not an HDF5 file");

    /* A truncated copy is called truncated (not "held open by another program"). */
    {
        snprintf(cmd, sizeof cmd, "head -c 20000 %s > %s/determinism_cut.h5", good, FEED_TEST_WORKDIR);
        EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 0);
        snprintf(cmd, sizeof cmd, "%s --seconds 1 %s/determinism_cut.h5", FEED_LOADER_BENCH_EXE, FEED_TEST_WORKDIR);
        EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
        EXPECT_STR_CONTAINS(out, "determinism_cut.h5' is truncated");
        EXPECT_STR_CONTAINS(out, "copy or convert it again");
    }

    /* Attributes that would train on garbage or size huge allocations. */
    float inf[FEED_MAX_CHANNELS]; /* one per channel of the attribute */
    for (int c = 0; c < FEED_MAX_CHANNELS; c++) inf[c] = INFINITY;
    int32_t huge = 100000000;
    struct { const char *attr; hid_t type; const void *value; const char *needle; } tampered[] = {
        {"std", H5T_NATIVE_FLOAT, inf, "channel 0 has mean"},
        {"mean", H5T_NATIVE_FLOAT, inf, "both finite"},
        {"num_classes", H5T_NATIVE_INT32, &huge, "class_names for num_classes = 100000000"},
    };
    for (size_t i = 0; i < sizeof tampered / sizeof tampered[0]; i++) {
        bh_write_synthetic(bad);
        f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t a = H5Aopen(f, tampered[i].attr, H5P_DEFAULT);
        EXPECT(a >= 0 && H5Awrite(a, tampered[i].type, tampered[i].value) >= 0);
        H5Aclose(a);
        H5Fclose(f);
        snprintf(cmd, sizeof cmd, "%s --seconds 1 %s", FEED_LOADER_BENCH_EXE, bad);
        EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
        EXPECT_STR_CONTAINS(out, tampered[i].needle);
        EXPECT_STR_CONTAINS(out, "determinism_broken.h5");
    }

    snprintf(cmd, sizeof cmd, "%s --seconds 1 --batch 1000 %s", FEED_LOADER_BENCH_EXE, good);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, "batch size 1000");
}

/* /train/images (and labels) replaced by a chunked dataset of n images of h x w that stores
 * only its first chunk (or none): the shape claims far more than the file holds. */
static void claim_images(const char *path, hsize_t n, hsize_t h, hsize_t w, int deflate, int write_chunk) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT(f >= 0);
    hid_t old = H5Dopen2(f, "/train/images", H5P_DEFAULT), space = H5Dget_space(old);
    hsize_t d[4];
    H5Sget_simple_extent_dims(space, d, NULL);
    H5Sclose(space), H5Dclose(old);
    EXPECT(H5Ldelete(f, "/train/images", H5P_DEFAULT) >= 0 && H5Ldelete(f, "/train/labels", H5P_DEFAULT) >= 0);
    hsize_t dims[4] = {n, h ? h : d[1], w ? w : d[2], d[3]}, chunk[4] = {n < 16 ? n : 16, dims[1], dims[2], dims[3]};
    hsize_t ldims[1] = {n}, lchunk[1] = {n < 16 ? n : 16};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk), H5Pset_chunk(lcpl, 1, lchunk);
    if (deflate) H5Pset_deflate(dcpl, 9);
    hid_t is = H5Screate_simple(4, dims, NULL), ls = H5Screate_simple(1, ldims, NULL);
    hid_t img = H5Dcreate2(f, "/train/images", H5T_STD_U8LE, is, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hid_t lab = H5Dcreate2(f, "/train/labels", H5T_STD_I32LE, ls, H5P_DEFAULT, lcpl, H5P_DEFAULT);
    EXPECT(img >= 0 && lab >= 0);
    if (write_chunk) {
        size_t bytes = (size_t)(16 * dims[1] * dims[2] * dims[3]);
        unsigned char *pix = calloc(bytes, 1);
        int32_t labels[16] = {0};
        hsize_t start[4] = {0, 0, 0, 0}, lstart[1] = {0};
        hid_t mi = H5Screate_simple(4, chunk, NULL), ml = H5Screate_simple(1, lchunk, NULL);
        H5Sselect_hyperslab(is, H5S_SELECT_SET, start, NULL, chunk, NULL);
        H5Sselect_hyperslab(ls, H5S_SELECT_SET, lstart, NULL, lchunk, NULL);
        EXPECT(H5Dwrite(img, H5T_NATIVE_UINT8, mi, is, H5P_DEFAULT, pix) >= 0);
        EXPECT(H5Dwrite(lab, H5T_NATIVE_INT32, ml, ls, H5P_DEFAULT, labels) >= 0);
        H5Sclose(mi), H5Sclose(ml), free(pix);
    }
    H5Dclose(img), H5Dclose(lab), H5Sclose(is), H5Sclose(ls), H5Pclose(dcpl), H5Pclose(lcpl), H5Fclose(f);
}

/* Image counts and sizes are bounded by what the file stores before anything is allocated. */
static void test_claimed_sizes(void) {
    char bad[4096], cmd[8192], out[8192];
    snprintf(bad, sizeof bad, "%s/determinism_claims.h5", FEED_TEST_WORKDIR);
    struct { hsize_t n, h, w; int deflate, written; const char *needle; } cases[] = {
        {100000000, 0, 0, 0, 1, "/train/images declares 76800000000 values but the file does not hold them all"},
        {100000000, 0, 0, 1, 1, "/train/images declares 76800000000 values but the file does not hold them all"},
        {100000000, 0, 0, 0, 0, "/train/images declares 76800000000 values but the file does not hold them all"},
        {1, 20000, 20000, 0, 0, "has shape 1x20000x20000x3 (N >= 1, 1 <= H, W <= 4096"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bh_write_synthetic(bad);
        claim_images(bad, cases[i].n, cases[i].h, cases[i].w, cases[i].deflate, cases[i].written);
        snprintf(cmd, sizeof cmd, "%s --seconds 1 %s", FEED_LOADER_BENCH_EXE, bad);
        EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
        EXPECT_STR_CONTAINS(out, cases[i].needle);
        EXPECT_STR_CONTAINS(out, "determinism_claims.h5");
    }
}

int main(void) {
    char file[4096];
    snprintf(file, sizeof file, "%s/determinism.h5", FEED_TEST_WORKDIR);
    bh_write_synthetic(file);

    EXPECT_INT_EQ(run_hashes(0, file, "1", "0", "0", ""), 0);
    EXPECT_INT_EQ(run_hashes(1, file, "1", "3", "2", "--reverse"), 0);
    EXPECT_INT_EQ(count_lines(g_out[0]), BH_NUM_KEYS);
    EXPECT(strcmp(g_out[0], g_out[1]) == 0);
    if (strcmp(g_out[0], g_out[1]) != 0) fprintf(stderr, "process A:\n%s\nprocess B:\n%s\n", g_out[0], g_out[1]);
    EXPECT_INT_EQ(run_hashes(2, file, "2", "0", "0", ""), 0);
    EXPECT(lines_all_differ(g_out[0], g_out[2]));

    /* This process agrees with both. */
    feed_dataset *ds = feed_dataset_open(file);
    feed_loader_config cfg = bh_config(1, 2, 1);
    feed_loader *ld = feed_loader_create(ds, &cfg);
    char hex[65], line[256];
    for (int k = 0; k < BH_NUM_KEYS; k++) {
        bh_hash_batch(ld, bh_keys[k][0], bh_keys[k][1], hex);
        snprintf(line, sizeof line, "epoch %lld step %lld sha256 %s\n", (long long)bh_keys[k][0],
                 (long long)bh_keys[k][1], hex);
        EXPECT_STR_CONTAINS(g_out[0], line);
    }
    feed_loader_destroy(ld);
    feed_dataset_close(ds);

    test_open_errors(file);
    test_claimed_sizes();
    return feed_test_finish("test_data_determinism");
}
