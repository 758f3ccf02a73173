/* test_ckpt_h5py.c - the format works both ways with h5py (Debian's, under FEED_PYTHON):
 * a checkpoint written here is read by tests/io/h5py_check.py (str attributes, dtypes,
 * shapes, values, CRC32, loading /model into a PyTorch module) and by tools/ckpt_info.py; a
 * checkpoint written by tests/io/h5py_write.py opens, verifies and reads here. */
#include "ckpt_test_util.h"
#include "feed_test.h"

#include "feed/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_out[1 << 16];

static int run(const char *cmd) {
    int rc = feed_test_run(cmd, g_out, sizeof g_out);
    if (getenv("FEED_TEST_VERBOSE")) printf("$ %s\n%s(exit %d)\n", cmd, g_out, rc);
    return rc;
}

static bool python_has_h5py(void) {
    if (run(FEED_PYTHON " -c 'import h5py, numpy'") == 0) return true;
    feed_test_fail(__FILE__, __LINE__,
                   "h5py is not importable by %s, so the h5py round trip cannot run:\n%s"
                   "  hint: apt-get install python3-h5py (or configure with -DFEED_PYTHON=/path/to/python3)",
                   FEED_PYTHON, g_out);
    return false;
}

/* C writes, h5py and ckpt_info.py read. */
static void c_to_python(const char *dir) {
    char *path = feed_xstrdup(feed_fmt("%s/from_c.h5", dir));
    write_sample_checkpoint(path, 7, 2737);

    size_t cap = 16384, n = 0;
    char *cmd = feed_xmalloc(cap, "command");
    n += (size_t)snprintf(cmd + n, cap - n, "%s %s/tests/io/h5py_check.py %s", FEED_PYTHON, FEED_SOURCE_DIR, path);
    for (size_t t = 0; t < sample_tensor_count; t++) {
        const sample_tensor *s = &sample_tensors[t];
        char dims[128] = "";
        for (int d = 0, m = 0; d < s->shape.rank; d++)
            m += snprintf(dims + m, sizeof dims - (size_t)m, "%s%lld", d ? "x" : "", (long long)s->shape.dims[d]);
        char key[128];
        snprintf(key, sizeof key, "%s", s->key);
        for (char *p = key; *p; p++)
            if (*p == '.') *p = '/';
        n += (size_t)snprintf(cmd + n, cap - n, " %s/%s:%zu:%s:%s", s->group, key, t,
                              feed_ckpt_dtype_name(s->shape.dtype), dims);
    }
    EXPECT_INT_EQ(run(cmd), 0);
    EXPECT_STR_CONTAINS(g_out, "h5py_check.py: 20 tensors, 0 failures");
    if (!strstr(g_out, " 0 failures")) fprintf(stderr, "%s", g_out);

    snprintf(cmd, cap, "%s %s/tools/ckpt_info.py %s", FEED_PYTHON, FEED_SOURCE_DIR, path);
    EXPECT_INT_EQ(run(cmd), 0);
    EXPECT_STR_CONTAINS(g_out, "resnet20");
    EXPECT_STR_CONTAINS(g_out, "model/layer1/0/conv1/weight");
    EXPECT_STR_CONTAINS(g_out, "(16, 16, 3, 3)");
    EXPECT_STR_CONTAINS(g_out, "20 tensors");
    EXPECT(strstr(g_out, "MISMATCH") == NULL && strstr(g_out, "PROBLEM") == NULL);

    flip_byte(path, dataset_offset(path, "/model/fc/bias") + 2, 0x01);
    EXPECT_INT_EQ(run(cmd), 1);
    EXPECT_STR_CONTAINS(g_out, "CRC MISMATCH");
    EXPECT_STR_CONTAINS(g_out, "PROBLEM: tensor model/fc/bias");
    free(cmd);
    free(path);
}

/* h5py writes (as a PyTorch converter would), C reads. */
static void python_to_c(const char *dir) {
    char *path = feed_xstrdup(feed_fmt("%s/from_python.h5", dir));
    EXPECT_INT_EQ(run(feed_fmt("%s %s/tests/io/h5py_write.py %s", FEED_PYTHON, FEED_SOURCE_DIR, path)), 0);
    if (!file_exists(path)) {
        feed_test_fail(__FILE__, __LINE__, "h5py_write.py wrote nothing:\n%s", g_out);
        free(path);
        return;
    }
    size_t size_before, size_after;
    unsigned char *before = read_whole_file(path, &size_before);

    feed_ckpt *c = feed_ckpt_open(path);
    const feed_ckpt_meta *m = feed_ckpt_get_meta(c);
    EXPECT(strcmp(m->arch, "resnet20") == 0);
    EXPECT_INT_EQ(m->in_channels, 1);
    EXPECT_STR_CONTAINS(feed_ckpt_created_by(c), "h5py_write.py");
    feed_ckpt_require_model(c, "resnet20", 10, 1);

    float w[144];
    feed_ckpt_read(c, "model", "conv1.weight", (feed_ckpt_shape){FEED_CKPT_F32, 4, {16, 1, 3, 3}}, w);
    int bad = 0;
    for (int i = 0; i < 144; i++) bad += w[i] != i * 0.5f - 100;
    EXPECT_INT_EQ(bad, 0);
    float b[10];
    feed_ckpt_read(c, "model", "fc.bias", (feed_ckpt_shape){FEED_CKPT_F32, 1, {10}}, b);
    EXPECT(b[9] == 9.0f);
    EXPECT_INT_EQ(feed_ckpt_read_i64(c, "model", "bn1.num_batches_tracked"), 12345);
    int64_t perm[6];
    feed_ckpt_read(c, "train", "perm", (feed_ckpt_shape){FEED_CKPT_I64, 1, {6}}, perm);
    EXPECT_INT_EQ(perm[0], 5);
    EXPECT_INT_EQ(perm[5], 0);

    /* no creation order in an h5py file: listed by name */
    feed_ckpt_entry *e;
    size_t n = feed_ckpt_list(c, "model", &e);
    EXPECT_INT_EQ(n, 3);
    if (n == 3) {
        EXPECT(strcmp(e[0].key, "bn1.num_batches_tracked") == 0);
        EXPECT(strcmp(e[1].key, "conv1.weight") == 0);
        EXPECT(strcmp(e[2].key, "fc.bias") == 0);
        EXPECT_INT_EQ(e[1].shape.dims[1], 1);
    }
    feed_ckpt_entries_free(e, n);
    feed_ckpt_close(c);

    unsigned char *after = read_whole_file(path, &size_after);
    EXPECT(size_before == size_after && memcmp(before, after, size_before) == 0);
    free(before);
    free(after);
    free(path);
}

int main(void) {
    char *dir = test_scratch_dir("h5py");
    if (python_has_h5py()) {
        c_to_python(dir);
        python_to_c(dir);
    }
    test_remove_dir(dir);
    free(dir);
    return feed_test_finish("test_ckpt_h5py");
}
