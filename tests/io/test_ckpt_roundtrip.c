/* test_ckpt_roundtrip.c - every dtype and rank written and read back bit for bit, root and
 * extra attributes, listing in creation order, scalars, reading leaves the file untouched,
 * abandon keeps the old file, and a stale .tmp is replaced by the next write. */
#include "ckpt_test_util.h"
#include "feed_test.h"

#include "feed/check.h"
#include "feed/version_gen.h"
#include "h5_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_all_tensors(const feed_ckpt *c) {
    for (size_t t = 0; t < sample_tensor_count; t++) {
        const sample_tensor *s = &sample_tensors[t];
        size_t bytes = (size_t)feed_ckpt_shape_numel(&s->shape) * feed_ckpt_dtype_size(s->shape.dtype);
        void *want = sample_data(t);
        void *got = malloc(bytes + 1);
        memset(got, 0xA5, bytes + 1);
        feed_ckpt_read(c, s->group, s->key, s->shape, got);
        if (memcmp(want, got, bytes) != 0) feed_test_fail(__FILE__, __LINE__, "tensor %s/%s differs", s->group, s->key);
        feed_test_checks++;
        EXPECT_INT_EQ(((unsigned char *)got)[bytes], 0xA5); /* nothing written past the end */
        EXPECT(feed_ckpt_has(c, s->group, s->key));
        feed_ckpt_shape shape = feed_ckpt_shape_of(c, s->group, s->key);
        EXPECT_INT_EQ(shape.dtype, s->shape.dtype);
        EXPECT_INT_EQ(shape.rank, s->shape.rank);
        for (int d = 0; d < shape.rank; d++) EXPECT_INT_EQ(shape.dims[d], s->shape.dims[d]);
        free(want);
        free(got);
    }
}

static void check_meta(const feed_ckpt *c) {
    const feed_ckpt_meta *m = feed_ckpt_get_meta(c);
    EXPECT(strcmp(m->arch, "resnet20") == 0);
    EXPECT(strcmp(m->dataset, "fashion_mnist") == 0);
    EXPECT(strcmp(m->config_ini, sample_meta.config_ini) == 0); /* verbatim, UTF-8, newlines */
    EXPECT_INT_EQ(m->num_classes, 10);
    EXPECT_INT_EQ(m->in_channels, 3);
    EXPECT_INT_EQ(m->epoch, 7);
    EXPECT_INT_EQ(m->step, 2737);
    EXPECT_INT_EQ(m->seed, 42);
    EXPECT_INT_EQ(feed_ckpt_format_version(c), FEED_CKPT_FORMAT_VERSION);
    EXPECT_STR_CONTAINS(feed_ckpt_created_by(c), FEED_VERSION);
    EXPECT_STR_CONTAINS(feed_ckpt_created_by(c), FEED_GIT_ID);

    char *note = feed_ckpt_attr_str(c, NULL, "note");
    EXPECT_STR_CONTAINS(note, "ckpt_test_util");
    free(note);
    char *layout = feed_ckpt_attr_str(c, "model/fc/weight", "layout");
    EXPECT_STR_CONTAINS(layout, "[out, in]");
    free(layout);
    char *created_at = feed_ckpt_attr_str(c, "", "created_at");
    EXPECT(created_at && strlen(created_at) == 20 && created_at[19] == 'Z');
    free(created_at);
    int64_t ws = 0;
    EXPECT(feed_ckpt_attr_i64(c, NULL, "world_size", &ws));
    EXPECT_INT_EQ(ws, 4);
    double best = 0;
    EXPECT(feed_ckpt_attr_f64(c, "train", "best_error", &best));
    EXPECT(best == 0.0625);
    EXPECT(!feed_ckpt_attr_i64(c, NULL, "no_such_attr", &ws));
    EXPECT(feed_ckpt_attr_str(c, "no/such/group", "x") == NULL);
}

static void check_listing(const feed_ckpt *c) {
    feed_ckpt_entry *e;
    size_t n = feed_ckpt_list(c, "model", &e);
    EXPECT_INT_EQ(n, 9);
    /* creation order, keys in PyTorch form */
    const char *want[] = {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                          "bn1.num_batches_tracked", "layer1.0.conv1.weight", "fc.weight", "fc.bias"};
    for (size_t i = 0; i < n && i < 9; i++) EXPECT_STR_CONTAINS(e[i].key, want[i]);
    if (n >= 7) {
        EXPECT(strcmp(e[6].path, "model/layer1/0/conv1/weight") == 0);
        EXPECT(strcmp(e[6].key, "layer1.0.conv1.weight") == 0);
        EXPECT_INT_EQ(e[6].shape.rank, 4);
        EXPECT_INT_EQ(e[6].shape.dims[1], 16);
    }
    feed_ckpt_entries_free(e, n);

    n = feed_ckpt_list(c, NULL, &e);
    EXPECT_INT_EQ(n, sample_tensor_count);
    feed_ckpt_entries_free(e, n);
    n = feed_ckpt_list(c, "optim/momentum", &e);
    EXPECT_INT_EQ(n, 1);
    if (n == 1) EXPECT(strcmp(e[0].key, "conv1.weight") == 0);
    feed_ckpt_entries_free(e, n);
    n = feed_ckpt_list(c, "no_such_group", &e);
    EXPECT_INT_EQ(n, 0);
    feed_ckpt_entries_free(e, n);
}

static void check_scalars(const char *path) {
    feed_ckpt_writer *w = feed_ckpt_begin(path, &sample_meta);
    feed_ckpt_put_i64(w, "train", "epoch_in_progress", -3);
    feed_ckpt_put_f64(w, "train", "lr", 0.1);
    feed_ckpt_put_i64(w, NULL, "top.level", 9); /* '.' in a key becomes a group: /top/level */
    feed_ckpt_commit(w);
    feed_ckpt *c = feed_ckpt_open(path);
    EXPECT_INT_EQ(feed_ckpt_read_i64(c, "train", "epoch_in_progress"), -3);
    EXPECT(feed_ckpt_read_f64(c, "train", "lr") == 0.1);
    EXPECT_INT_EQ(feed_ckpt_read_i64(c, "top", "level"), 9);
    EXPECT_INT_EQ(feed_ckpt_read_i64(c, "", "top/level"), 9);
    EXPECT(!feed_ckpt_has(c, "train", "missing"));
    EXPECT(!feed_ckpt_has(c, "top", NULL)); /* a group is not a tensor */
    feed_ckpt_close(c);
}

/* The superblock repair of h5_image_fixup.c: lookup3 against its published test values and
 * against the checksum HDF5 itself stores in a file it wrote to disk. */
static void check_superblock_checksum(const char *path) {
    EXPECT_INT_EQ(h5_checksum_lookup3("", 0, 0), 0xdeadbeefu);
    EXPECT_INT_EQ(h5_checksum_lookup3("Four score and seven years ago", 30, 0), 0x17770551u);
    EXPECT_INT_EQ(h5_checksum_lookup3("Four score and seven years ago", 30, 1), 0xcd628161u);

    hid_t fapl = h5_fapl_create();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    EXPECT(f >= 0);
    H5Pclose(fapl);
    H5Fclose(f);
    size_t size;
    unsigned char *bytes = read_whole_file(path, &size);
    EXPECT_INT_EQ(bytes[8], 2); /* superblock version 2 (checksummed) */
    uint32_t stored = bytes[44] | (uint32_t)bytes[45] << 8 | (uint32_t)bytes[46] << 16 | (uint32_t)bytes[47] << 24;
    EXPECT_INT_EQ(h5_checksum_lookup3(bytes, 44, 0), stored);
    bytes[44] ^= 0xff;
    EXPECT_INT_EQ(h5_image_fix_superblock(bytes, size), 0);
    EXPECT_INT_EQ(bytes[44] | (uint32_t)bytes[45] << 8 | (uint32_t)bytes[46] << 16 | (uint32_t)bytes[47] << 24, stored);
    free(bytes);
}

int main(void) {
    char *dir = test_scratch_dir("roundtrip");
    char *path = feed_xstrdup(feed_fmt("%s/run_e0007_s00002737.h5", dir));

    write_sample_checkpoint(path, 7, 2737);
    size_t size_before, size_after;
    unsigned char *before = read_whole_file(path, &size_before);

    feed_ckpt *c = feed_ckpt_open(path);
    EXPECT(strcmp(feed_ckpt_path(c), path) == 0);
    check_meta(c);
    check_all_tensors(c);
    check_listing(c);
    feed_ckpt_require_model(c, "resnet20", 10, 3); /* matches: returns */
    feed_ckpt_require_model(c, NULL, -1, -1);
    feed_ckpt_close(c);

    /* opening and reading never modifies the file */
    unsigned char *after = read_whole_file(path, &size_after);
    EXPECT_INT_EQ(size_before, size_after);
    EXPECT(size_before == size_after && memcmp(before, after, size_before) == 0);
    free(after);

    /* try_open of a good file fills no error */
    feed_ckpt_error err = {{0}, {0}};
    c = feed_ckpt_try_open(path, &err);
    EXPECT(c != NULL);
    EXPECT_INT_EQ(err.message[0], 0);
    feed_ckpt_close(c);

    /* abandon: the .tmp disappears, the old file stays byte for byte */
    feed_ckpt_writer *w = feed_ckpt_begin(path, &sample_meta);
    feed_ckpt_put_i64(w, "train", "x", 1);
    char *tmp = feed_ckpt_tmp_path(path);
    EXPECT(file_exists(tmp));
    feed_ckpt_abandon(w);
    EXPECT(!file_exists(tmp));
    after = read_whole_file(path, &size_after);
    EXPECT(size_before == size_after && memcmp(before, after, size_before) == 0);
    free(after);

    /* a stale .tmp (garbage from a killed writer) is ignored by readers and replaced */
    feed_test_write_file(tmp, "garbage", 7);
    c = feed_ckpt_open(path);
    feed_ckpt_close(c);
    write_sample_checkpoint(path, 8, 3000);
    EXPECT(!file_exists(tmp));
    c = feed_ckpt_open(path);
    EXPECT_INT_EQ(feed_ckpt_get_meta(c)->epoch, 8);
    feed_ckpt_close(c);

    check_scalars(feed_fmt("%s/scalars.h5", dir));
    check_superblock_checksum(feed_fmt("%s/plain_hdf5.h5", dir));

    /* shape helpers */
    char buf[64];
    feed_ckpt_shape s = {FEED_CKPT_F32, 4, {16, 3, 3, 3}};
    EXPECT(strcmp(feed_ckpt_shape_str(&s, buf, sizeof buf), "[16, 3, 3, 3]") == 0);
    EXPECT_INT_EQ(feed_ckpt_shape_numel(&s), 432);
    s.rank = 0;
    EXPECT(strcmp(feed_ckpt_shape_str(&s, buf, sizeof buf), "[]") == 0);
    EXPECT_INT_EQ(feed_ckpt_shape_numel(&s), 1);
    EXPECT(strcmp(feed_ckpt_dtype_name(FEED_CKPT_U64), "uint64") == 0);

    free(before);
    free(tmp);
    free(path);
    test_remove_dir(dir);
    free(dir);
    return feed_test_finish("test_ckpt_roundtrip");
}
