/* metrics_log.c - the per-rank JSON-lines metrics file (see include/feed/metrics.h). */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/json.h"
#include "feed/metrics.h"

struct feed_metrics_log {
    FILE *f;
    char *path;
};

/* Value of "epoch": N in a JSON line, or -1. */
static long long line_epoch(const char *line) {
    const char *p = strstr(line, "\"epoch\":");
    return p ? atoll(p + 8) : -1;
}

/* Rewrite the file without the lines of epochs after resume_epoch (temp file + rename, so a
 * crash here leaves the old file). */
static void drop_later_epochs(const char *path, int64_t resume_epoch) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        FEED_INPUT_ERROR("move it away: this name is the run's metrics file", "%s is %s, not a file", path,
                         S_ISDIR(st.st_mode) ? "a folder" : "a special file");
    FILE *in = fopen(path, "r");
    if (!in) return; /* no file yet */
    char *tmp = feed_xmalloc(strlen(path) + 5, "path");
    sprintf(tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    FEED_CHECK(out, "check that the run folder is writable", "cannot write %s: %s", tmp, feed_errno_str());
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) /* a last line without its newline was cut: dropped */
        if (line[len - 1] == '\n' && line_epoch(line) <= resume_epoch) fputs(line, out);
    free(line);
    fclose(in);
    FEED_CHECK(fflush(out) == 0 && fsync(fileno(out)) == 0, "is the disk full?", "cannot write %s", tmp);
    fclose(out);
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        FEED_FAIL("check the run folder's permissions", "cannot replace %s: %s", path, strerror(err));
    }
    free(tmp);
}

feed_metrics_log *feed_metrics_open(const char *path, int64_t resume_epoch) {
    if (resume_epoch >= 0) drop_later_epochs(path, resume_epoch);
    feed_metrics_log *log = feed_xcalloc(1, sizeof *log, "metrics log");
    log->f = fopen(path, "a");
    FEED_CHECK(log->f, "check that the run folder is writable", "cannot open %s: %s", path, feed_errno_str());
    log->path = feed_xstrdup(path);
    return log;
}

static void put_num(FILE *f, const char *name, double v) {
    fprintf(f, ",\"%s\":", name);
    feed_json_num(f, v);
}

void feed_metrics_append(feed_metrics_log *log, int rank, const feed_epoch_metrics *m) {
    FILE *f = log->f;
    fprintf(f, "{\"epoch\":%lld,\"step\":%lld,\"rank\":%d", (long long)m->epoch, (long long)m->step, rank);
    put_num(f, "lr", m->lr);
    put_num(f, "train_loss", m->train_loss);
    put_num(f, "train_error", m->train_error);
    put_num(f, "test_loss", m->test_loss);
    put_num(f, "test_error", m->test_error);
    put_num(f, "img_per_s", m->img_per_s);
    put_num(f, "seconds", m->seconds);
    for (int i = 0; i < m->n_extra; i++) put_num(f, m->extra_name[i], m->extra[i]);
    fputs("}\n", f);
    FEED_CHECK(fflush(f) == 0, "is the disk full?", "cannot write %s", log->path);
}

void feed_metrics_event(feed_metrics_log *log, int rank, const char *event, int64_t epoch,
                        int64_t step) {
    fprintf(log->f, "{\"event\":\"%s\",\"epoch\":%lld,\"step\":%lld,\"rank\":%d}\n", event,
            (long long)epoch, (long long)step, rank);
    FEED_CHECK(fflush(log->f) == 0, "is the disk full?", "cannot write %s", log->path);
}

void feed_metrics_close(feed_metrics_log *log) {
    if (!log) return;
    fclose(log->f);
    free(log->path);
    free(log);
}
