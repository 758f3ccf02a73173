/* test_ckpt_dir.c - run folders: names, newest-first listing by step (not by name), finding
 * the newest checkpoint that verifies while reporting damaged newer ones, keep-last-K that
 * never deletes the newest good checkpoint, the best copy, and stale .tmp files. */
#include "ckpt_test_util.h"
#include "feed_test.h"

#include "feed/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *g_dir;

static char *ckpt(int64_t epoch, int64_t step) { return feed_ckpt_dir_path(g_dir, "run", epoch, step); }

static void write_ckpt(int64_t epoch, int64_t step) {
    char *path = ckpt(epoch, step);
    write_sample_checkpoint(path, epoch, step);
    free(path);
}

static void damage_weight(int64_t epoch, int64_t step) {
    char *path = ckpt(epoch, step);
    flip_byte(path, dataset_offset(path, "/model/fc/weight") + 3, 0x80);
    free(path);
}

static void truncate_ckpt(int64_t epoch, int64_t step) {
    char *path = ckpt(epoch, step);
    truncate_file(path, file_size(path) / 2);
    free(path);
}

static bool ckpt_exists(int64_t epoch, int64_t step) {
    char *path = ckpt(epoch, step);
    bool e = file_exists(path);
    free(path);
    return e;
}

static void naming_and_listing(void) {
    char *p = feed_ckpt_dir_path("/runs/a", "teacher0", 12, 4680);
    EXPECT(strcmp(p, "/runs/a/teacher0_e0012_s00004680.h5") == 0);
    free(p);
    p = feed_ckpt_dir_best_path("/runs/a", "teacher0");
    EXPECT(strcmp(p, "/runs/a/teacher0_best.h5") == 0);
    free(p);

    feed_ckpt_dir_entry *e;
    EXPECT_INT_EQ(feed_ckpt_dir_list(feed_fmt("%s/not_yet", g_dir), "run", &e), 0); /* fresh run */
    feed_ckpt_dir_entries_free(e, 0);

    write_ckpt(1, 390);
    write_ckpt(2, 780);
    write_ckpt(3, 1170);
    write_ckpt(9999, 123456789); /* wider than the padding: order is numeric, not by name */
    write_ckpt(10000, 123456790);
    /* files that are not periodic checkpoints of "run" */
    feed_test_write_file(feed_fmt("%s/run_e0004_s00001560.h5.tmp", g_dir), "x", 1);
    feed_test_write_file(feed_fmt("%s/run_best.h5", g_dir), "x", 1);
    feed_test_write_file(feed_fmt("%s/other_e0005_s00001950.h5", g_dir), "x", 1);
    feed_test_write_file(feed_fmt("%s/run_e0005_s00001950.h5.bak", g_dir), "x", 1);
    feed_test_write_file(feed_fmt("%s/run_eX_s1.h5", g_dir), "x", 1);
    feed_test_write_file(feed_fmt("%s/run_old_e0001_s00000001.h5", g_dir), "x", 1);

    size_t n = feed_ckpt_dir_list(g_dir, "run", &e);
    EXPECT_INT_EQ(n, 5);
    int64_t steps[] = {123456790, 123456789, 1170, 780, 390};
    for (size_t i = 0; i < n && i < 5; i++) EXPECT_INT_EQ(e[i].step, steps[i]);
    if (n == 5) {
        EXPECT_INT_EQ(e[0].epoch, 10000);
        EXPECT_STR_CONTAINS(e[0].path, "run_e10000_s123456790.h5");
    }
    feed_ckpt_dir_entries_free(e, n);
}

static void newest_that_verifies(void) {
    feed_ckpt_scan scan;
    feed_ckpt_find_newest(g_dir, "run", &scan);
    EXPECT_STR_CONTAINS(scan.path, "run_e10000_s123456790.h5");
    EXPECT_INT_EQ(scan.n_skipped, 0);
    EXPECT_INT_EQ(scan.step, 123456790);
    feed_ckpt_scan_free(&scan);

    damage_weight(10000, 123456790);
    truncate_ckpt(9999, 123456789);
    feed_ckpt_find_newest(g_dir, "run", &scan);
    EXPECT_STR_CONTAINS(scan.path, "run_e0003_s00001170.h5");
    EXPECT_INT_EQ(scan.epoch, 3);
    EXPECT_INT_EQ(scan.step, 1170);
    EXPECT_INT_EQ(scan.n_skipped, 2);
    if (scan.n_skipped == 2) {
        EXPECT_STR_CONTAINS(scan.skipped_path[0], "run_e10000_s123456790.h5");
        EXPECT_STR_CONTAINS(scan.skipped_reason[0], "tensor 'model/fc/weight'");
        EXPECT_STR_CONTAINS(scan.skipped_path[1], "run_e9999_s123456789.h5");
        EXPECT_STR_CONTAINS(scan.skipped_reason[1], "truncated");
    }
    char report[4096] = "";
    FILE *mem = fmemopen(report, sizeof report - 1, "w");
    feed_ckpt_scan_print(&scan, mem);
    fclose(mem);
    EXPECT_STR_CONTAINS(report, "skipped damaged checkpoint");
    EXPECT_STR_CONTAINS(report, "run_e9999_s123456789.h5");
    feed_ckpt_scan_free(&scan);

    feed_ckpt_find_newest(feed_fmt("%s/not_yet", g_dir), "run", &scan);
    EXPECT(scan.path == NULL);
    EXPECT_INT_EQ(scan.n_skipped, 0);
    feed_ckpt_scan_free(&scan);
}

static void keep_last(void) {
    /* now: e10000 (corrupt), e9999 (truncated), e3, e2, e1 (good). Keeping 2 keeps the two
     * damaged ones and must keep e3 as the newest good one. */
    EXPECT_INT_EQ(feed_ckpt_dir_prune(g_dir, "run", 2), 2);
    EXPECT(ckpt_exists(10000, 123456790));
    EXPECT(ckpt_exists(9999, 123456789));
    EXPECT(ckpt_exists(3, 1170));
    EXPECT(!ckpt_exists(2, 780));
    EXPECT(!ckpt_exists(1, 390));
    EXPECT(file_exists(feed_fmt("%s/other_e0005_s00001950.h5", g_dir))); /* not ours: untouched */

    /* nothing to delete: nothing verified or removed */
    EXPECT_INT_EQ(feed_ckpt_dir_prune(g_dir, "run", 3), 0);

    /* two good new ones: the usual case, keep 2 */
    write_ckpt(10001, 123456800);
    write_ckpt(10002, 123456900);
    EXPECT_INT_EQ(feed_ckpt_dir_prune(g_dir, "run", 2), 3);
    feed_ckpt_dir_entry *e;
    size_t n = feed_ckpt_dir_list(g_dir, "run", &e);
    EXPECT_INT_EQ(n, 2);
    if (n == 2) {
        EXPECT_INT_EQ(e[0].epoch, 10002);
        EXPECT_INT_EQ(e[1].epoch, 10001);
    }
    feed_ckpt_dir_entries_free(e, n);
}

static void best_and_tmp(void) {
    char *src = ckpt(10001, 123456800);
    char *best = feed_ckpt_dir_best_path(g_dir, "run");
    feed_ckpt_dir_save_best(g_dir, "run", src);
    feed_ckpt *c = feed_ckpt_open(best);
    EXPECT_INT_EQ(feed_ckpt_get_meta(c)->epoch, 10001);
    feed_ckpt_close(c);
    /* the best one survives pruning of its source */
    write_ckpt(10003, 123457000);
    EXPECT_INT_EQ(feed_ckpt_dir_prune(g_dir, "run", 1), 2);
    EXPECT(!file_exists(src));
    c = feed_ckpt_open(best);
    EXPECT_INT_EQ(feed_ckpt_get_meta(c)->epoch, 10001);
    feed_ckpt_close(c);
    /* replaced by a newer best */
    char *newer = ckpt(10003, 123457000);
    feed_ckpt_dir_save_best(g_dir, "run", newer);
    c = feed_ckpt_open(best);
    EXPECT_INT_EQ(feed_ckpt_get_meta(c)->epoch, 10003);
    feed_ckpt_close(c);
    EXPECT(!file_exists(feed_fmt("%s.tmp", best)));

    /* stale .tmp files of this prefix go; others stay */
    feed_test_write_file(feed_fmt("%s/run_best.h5.tmp", g_dir), "x", 1);
    EXPECT_INT_EQ(feed_ckpt_dir_remove_stale_tmp(g_dir, "run"), 2); /* + run_e0004_...h5.tmp */
    EXPECT(!file_exists(feed_fmt("%s/run_e0004_s00001560.h5.tmp", g_dir)));
    feed_test_write_file(feed_fmt("%s/other_e0001_s00000001.h5.tmp", g_dir), "x", 1);
    EXPECT_INT_EQ(feed_ckpt_dir_remove_stale_tmp(g_dir, "run"), 0);
    EXPECT(file_exists(feed_fmt("%s/other_e0001_s00000001.h5.tmp", g_dir)));
    free(src);
    free(newer);
    free(best);
}

int main(void) {
    char *root = test_scratch_dir("dir");
    g_dir = feed_xstrdup(feed_fmt("%s/runs/rank0", root));
    feed_ckpt_dir_create(g_dir); /* mkdir -p */
    feed_ckpt_dir_create(g_dir); /* and again: already there is fine */
    struct stat st;
    EXPECT(stat(g_dir, &st) == 0 && S_ISDIR(st.st_mode));

    naming_and_listing();
    newest_that_verifies();
    keep_last();
    best_and_tmp();

    test_remove_dir(root);
    free(root);
    free(g_dir);
    return feed_test_finish("test_ckpt_dir");
}
