/* checkpoint_dir.c - a run folder's checkpoints: naming, listing newest first, finding the
 * newest one that verifies, keeping the last K, the `best` copy and stale .tmp files.
 *
 *   <dir>/<prefix>_e<epoch:04>_s<step:08>.h5   periodic checkpoints (ordered by step, epoch)
 *   <dir>/<prefix>_best.h5                     hard link to (or copy of) the best one
 *   <dir>/<anything>.tmp                       a write in progress or killed: never read
 */
#include "atomic_file.h"
#include "checkpoint_internal.h"

#include "feed/check.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HINT_FOLDER "check the run folder's path and permissions"

void feed_ckpt_dir_create(const char *dir) {
    char *path = feed_xstrdup(dir);
    /* mkdir -p: create each prefix ending before a '/', then the whole path */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != 0) continue;
        char saved = *p;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            FEED_INPUT_ERROR(HINT_FOLDER, "cannot create the run folder '%s': %s", path, feed_errno_str());
        *p = saved;
        if (!saved) break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        FEED_INPUT_ERROR(HINT_FOLDER, "the run folder '%s' is not a folder", path);
    free(path);
}

char *feed_ckpt_dir_path(const char *dir, const char *prefix, int64_t epoch, int64_t step) {
    return feed_xstrdup(feed_fmt("%s/%s_e%04" PRId64 "_s%08" PRId64 ".h5", dir, prefix, epoch, step));
}

char *feed_ckpt_dir_best_path(const char *dir, const char *prefix) {
    return feed_xstrdup(feed_fmt("%s/%s_best.h5", dir, prefix));
}

/* Parses "<digits>" at *s, advancing it; false if there are none. */
static bool parse_count(const char **s, int64_t *out) {
    if (**s < '0' || **s > '9') return false;
    int64_t v = 0;
    while (**s >= '0' && **s <= '9') {
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    *out = v;
    return true;
}

/* Is name "<prefix>_e<epoch>_s<step>.h5"? */
static bool parse_periodic_name(const char *name, const char *prefix, int64_t *epoch, int64_t *step) {
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0) return false;
    const char *s = name + plen;
    if (strncmp(s, "_e", 2) != 0) return false;
    s += 2;
    if (!parse_count(&s, epoch) || strncmp(s, "_s", 2) != 0) return false;
    s += 2;
    return parse_count(&s, step) && strcmp(s, ".h5") == 0;
}

static int newest_first(const void *a, const void *b) {
    const feed_ckpt_dir_entry *x = a, *y = b;
    if (x->step != y->step) return x->step > y->step ? -1 : 1;
    if (x->epoch != y->epoch) return x->epoch > y->epoch ? -1 : 1;
    return strcmp(y->path, x->path);
}

size_t feed_ckpt_dir_list(const char *dir, const char *prefix, feed_ckpt_dir_entry **out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0; /* a fresh run: nothing yet */
        FEED_INPUT_ERROR(HINT_FOLDER, "cannot list the run folder '%s': %s", dir, feed_errno_str());
    }
    size_t n = 0, cap = 0;
    feed_ckpt_dir_entry *entries = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        int64_t epoch, step;
        if (!parse_periodic_name(e->d_name, prefix, &epoch, &step)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            entries = feed_xrealloc(entries, cap * sizeof *entries, "checkpoint folder listing");
        }
        entries[n++] = (feed_ckpt_dir_entry){feed_xstrdup(feed_fmt("%s/%s", dir, e->d_name)), epoch, step};
    }
    closedir(d);
    if (n) qsort(entries, n, sizeof *entries, newest_first);
    *out = entries;
    return n;
}

void feed_ckpt_dir_entries_free(feed_ckpt_dir_entry *entries, size_t n) {
    for (size_t i = 0; i < n; i++) free(entries[i].path);
    free(entries);
}

/* ---- newest verified checkpoint -------------------------------------------------------------- */

static bool verifies(const char *path, feed_ckpt_error *err) {
    feed_ckpt *c = feed_ckpt_try_open(path, err);
    feed_ckpt_close(c);
    return c != NULL;
}

void feed_ckpt_find_newest(const char *dir, const char *prefix, feed_ckpt_scan *out) {
    memset(out, 0, sizeof *out);
    feed_ckpt_dir_entry *entries;
    size_t n = feed_ckpt_dir_list(dir, prefix, &entries);
    for (size_t i = 0; i < n; i++) {
        feed_ckpt_error err;
        if (verifies(entries[i].path, &err)) {
            out->path = feed_xstrdup(entries[i].path);
            out->epoch = entries[i].epoch;
            out->step = entries[i].step;
            break;
        }
        size_t k = out->n_skipped++;
        out->skipped_path = feed_xrealloc(out->skipped_path, (k + 1) * sizeof(char *), "skipped checkpoints");
        out->skipped_reason = feed_xrealloc(out->skipped_reason, (k + 1) * sizeof(char *), "skipped checkpoints");
        out->skipped_path[k] = feed_xstrdup(entries[i].path);
        out->skipped_reason[k] = feed_xstrdup(err.message);
    }
    feed_ckpt_dir_entries_free(entries, n);
}

void feed_ckpt_scan_print(const feed_ckpt_scan *scan, FILE *to) {
    for (size_t i = 0; i < scan->n_skipped; i++)
        fprintf(to, "feed_mpi: skipped damaged checkpoint '%s': %s\n", scan->skipped_path[i], scan->skipped_reason[i]);
}

void feed_ckpt_scan_free(feed_ckpt_scan *scan) {
    for (size_t i = 0; i < scan->n_skipped; i++) {
        free(scan->skipped_path[i]);
        free(scan->skipped_reason[i]);
    }
    free(scan->skipped_path);
    free(scan->skipped_reason);
    free(scan->path);
    memset(scan, 0, sizeof *scan);
}

/* ---- keeping the last K ------------------------------------------------------------------------ */

static void remove_file(const char *path, const char *what) {
    if (unlink(path) != 0 && errno != ENOENT)
        FEED_FAIL(HINT_FOLDER, "cannot delete the %s '%s': %s", what, path, feed_errno_str());
}

int feed_ckpt_dir_prune(const char *dir, const char *prefix, int keep_last) {
    FEED_CHECK(keep_last >= 1, "keep at least the newest checkpoint", "feed_ckpt_dir_prune: keep_last is %d", keep_last);
    feed_ckpt_dir_entry *entries;
    size_t n = feed_ckpt_dir_list(dir, prefix, &entries);
    int deleted = 0;
    bool kept_one_that_verifies = false, checked_kept = false;
    for (size_t i = (size_t)keep_last; i < n; i++) {
        /* Verification is lazy: only once something would be deleted, and only until the newest
         * checkpoint that verifies is known to be kept. */
        feed_ckpt_error err;
        if (!checked_kept) {
            for (size_t k = 0; k < (size_t)keep_last && !kept_one_that_verifies; k++)
                kept_one_that_verifies = verifies(entries[k].path, &err);
            checked_kept = true;
        }
        if (!kept_one_that_verifies && verifies(entries[i].path, &err)) {
            kept_one_that_verifies = true; /* the newest good one survives, however old */
            continue;
        }
        remove_file(entries[i].path, "old checkpoint");
        deleted++;
    }
    if (deleted) {
        const char *failed;
        if (feed_io_fsync_parent_dir(entries[0].path, &failed) != 0)
            FEED_FAIL(HINT_FOLDER, "%s: %s", failed, feed_errno_str());
    }
    feed_ckpt_dir_entries_free(entries, n);
    return deleted;
}

/* ---- best ----------------------------------------------------------------------------------------- */

void feed_ckpt_dir_save_best(const char *dir, const char *prefix, const char *src_path) {
    char *best = feed_ckpt_dir_best_path(dir, prefix);
    char *tmp = feed_ckpt_tmp_path(best);
    remove_file(tmp, "stale temporary file");
    const char *failed = NULL;
    /* A hard link costs nothing and, src being committed already, is durable once the folder
     * is fsynced; file systems without hard links get a copy. */
    if (link(src_path, tmp) != 0) {
        if (errno != EXDEV && errno != EPERM && errno != ENOTSUP && errno != EMLINK && errno != ENOSYS)
            failed = feed_fmt("link('%s', '%s')", src_path, tmp);
        else if (feed_io_copy_file(src_path, tmp, &failed) == 0)
            failed = NULL;
    }
    if (!failed && feed_io_rename_durable(tmp, best, &failed) == 0) failed = NULL;
    if (failed) {
        char *what = feed_xstrdup(feed_fmt("%s: %s", failed, feed_errno_str()));
        unlink(tmp);
        FEED_FAIL("is the disk full or the folder not writable?", "cannot save the best checkpoint '%s': %s", best, what);
    }
    free(tmp);
    free(best);
}

/* ---- stale temporary files --------------------------------------------------------------------------- */

int feed_ckpt_dir_remove_stale_tmp(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        FEED_INPUT_ERROR(HINT_FOLDER, "cannot list the run folder '%s': %s", dir, feed_errno_str());
    }
    size_t plen = strlen(prefix);
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        bool ours = strncmp(e->d_name, prefix, plen) == 0 && e->d_name[plen] == '_';
        bool unfinished = len > 7 && strcmp(e->d_name + len - 7, ".h5.tmp") == 0;
        if (!ours || !unfinished) continue;
        remove_file(feed_fmt("%s/%s", dir, e->d_name), "stale temporary checkpoint");
        removed++;
    }
    closedir(d);
    return removed;
}
