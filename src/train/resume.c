/* resume.c - choosing the checkpoint to resume from; see include/feed/resume.h. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/checkpoint.h"
#include "feed/resume.h"

static char *expand_rank(const char *pattern, int rank) {
    const char *at = strstr(pattern, "{rank}");
    if (!at) return feed_xstrdup(pattern);
    char *out = feed_xmalloc(strlen(pattern) + 16, "path");
    sprintf(out, "%.*s%d%s", (int)(at - pattern), pattern, rank, at + 6);
    return out;
}

/* A verified checkpoint of this rank at exactly `step`, or NULL. */
static char *find_at_step(const char *dir, const char *prefix, int64_t step) {
    feed_ckpt_dir_entry *list = NULL;
    size_t n = feed_ckpt_dir_list(dir, prefix, &list);
    char *found = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        if (list[i].step != step) continue;
        feed_ckpt_error err;
        feed_ckpt *ck = feed_ckpt_try_open(list[i].path, &err);
        if (ck) {
            found = feed_xstrdup(list[i].path);
            feed_ckpt_close(ck);
        }
    }
    feed_ckpt_dir_entries_free(list, n);
    return found;
}

/* A fresh start must not share the folder with checkpoints of an earlier run under the same
 * prefix: keep_last would prune by step and delete the new run's files, not the old ones. */
static void refuse_earlier_checkpoints(const feed_config *cfg, const char *prefix, const char *why) {
    feed_ckpt_dir_entry *list;
    size_t n = feed_ckpt_dir_list(cfg->run.dir, prefix, &list);
    if (n == 0) return;
    char *newest = feed_xstrdup(list[0].path);
    feed_ckpt_dir_entries_free(list, n);
    FEED_INPUT_ERROR("give the run another run.dir, or delete that run's checkpoints; "
                     "checkpoint.resume=auto continues it instead",
                     "%s, but %s already holds %zu checkpoint(s) of an earlier run (newest %s)", why,
                     cfg->run.dir, n, newest);
}

feed_resume_choice feed_resume_select(const feed_config *cfg, const char *prefix, MPI_Comm comm) {
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    feed_resume_choice c = {NULL};
    const char *mode = cfg->checkpoint.resume;
    if (strcmp(mode, "none") == 0) {
        refuse_earlier_checkpoints(cfg, prefix, "checkpoint.resume = none starts a new run");
        return c;
    }
    if (strcmp(mode, "auto") != 0) {
        c.path = expand_rank(mode, rank);
        return c; /* opened (and verified, fatally) by the caller */
    }
    feed_ckpt_dir_remove_stale_tmp(cfg->run.dir, prefix);
    feed_ckpt_scan scan;
    feed_ckpt_find_newest(cfg->run.dir, prefix, &scan);
    if (scan.n_skipped) {
        feed_ckpt_scan_print(&scan, stderr);
        if (cfg->checkpoint.on_corrupt == FEED_CORRUPT_REFUSE)
            FEED_INPUT_ERROR("checkpoint.on_corrupt = fallback resumes from the previous good one; "
                             "or move the damaged file away",
                             "the newest checkpoint of %s in %s is damaged (see above)", prefix, cfg->run.dir);
        if (!scan.path) /* starting over from epoch 1 would look like a resume that worked */
            FEED_INPUT_ERROR("move the damaged files away to start again from epoch 1, or name a good copy with "
                             "checkpoint.resume = PATH",
                             "every checkpoint of %s in %s is damaged (see above): nothing to resume from", prefix,
                             cfg->run.dir);
    }
    long long mine = scan.path ? (long long)scan.step : -1, lowest = -1, highest = -1;
    CHECK_MPI(MPI_Allreduce(&mine, &lowest, 1, MPI_LONG_LONG, MPI_MIN, comm));
    CHECK_MPI(MPI_Allreduce(&mine, &highest, 1, MPI_LONG_LONG, MPI_MAX, comm));
    if (lowest < 0) {
        feed_ckpt_scan_free(&scan);
        if (mine >= 0) /* only some ranks have checkpoints: all must start fresh */
            refuse_earlier_checkpoints(cfg, prefix, "other ranks have no checkpoint to resume from");
        CHECK_MPI(MPI_Barrier(comm)); /* a rank that refused aborts the job; the others wait */
        return c;
    }
    c.path = mine == lowest ? feed_xstrdup(scan.path) : find_at_step(cfg->run.dir, prefix, lowest);
    feed_ckpt_scan_free(&scan);
    int ok = c.path != NULL, all_ok = 0;
    CHECK_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
    if (!all_ok) {
        if (!ok)
            FEED_INPUT_ERROR("raise checkpoint.keep_last (>= 2) so every rank keeps a common step, "
                             "or resume with checkpoint.resume=none",
                             "rank %d has no checkpoint at step %lld, the newest step every rank has",
                             rank, lowest);
        /* the rank without one aborts the job; the others wait for that */
        CHECK_MPI(MPI_Barrier(comm));
    }
    return c;
}

void feed_resume_choice_free(feed_resume_choice *c) {
    free(c->path);
    c->path = NULL;
}
