/* run_lock.c - see include/feed/run_lock.h. */
#include "feed/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/checkpoint.h"

static int g_lock_fd = -1; /* held until exit */

static const char *lock_path(const char *dir) { return feed_fmt("%s/.feed_mpi.lock", dir); }

/* The holder text in the lock file (first line), or "". */
static void read_holder(int fd, char *out, size_t cap) {
    out[0] = 0;
    if (cap < 2) return;
    ssize_t n = pread(fd, out, cap - 1, 0);
    if (n <= 0) return;
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
}

/* A clean exit leaves the file empty, so only a run that died leaves its text behind. */
static void release_at_exit(void) {
    if (g_lock_fd < 0) return;
    if (ftruncate(g_lock_fd, 0) != 0) { /* nothing to do: the next run reports a stale lock */ }
    close(g_lock_fd);
    g_lock_fd = -1;
}

int feed_run_lock(const char *dir, char *why, size_t why_cap, char *previous, size_t prev_cap) {
    previous[0] = 0;
    feed_ckpt_dir_create(dir);
    const char *path = lock_path(dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot create the lock file '%s': %s", path, feed_errno_str());
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[512];
        read_holder(fd, holder, sizeof holder);
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(why, why_cap, "the run folder '%s' is in use by another run (%s)", dir,
                     *holder ? holder : "holder unknown");
        else
            snprintf(why, why_cap, "cannot lock '%s': %s", path, strerror(e));
        return -1;
    }
    read_holder(fd, previous, prev_cap);
    char host[256] = "unknown", stamp[32] = "unknown", text[400];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm utc;
    if (gmtime_r(&now, &utc)) strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    int len = snprintf(text, sizeof text, "feed_mpi on host %s pid %ld started %s\n", host, (long)getpid(), stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        snprintf(why, why_cap, "cannot write the lock file '%s': %s", path, feed_errno_str());
        close(fd);
        return -1;
    }
    g_lock_fd = fd;
    atexit(release_at_exit);
    return 0;
}

int feed_run_lock_probe(const char *dir, char *why, size_t why_cap) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(why, why_cap, "run.dir '%s' exists and is not a folder", dir);
            return -1;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            snprintf(why, why_cap, "run.dir '%s' is not writable: %s", dir, feed_errno_str());
            return -1;
        }
        int fd = open(lock_path(dir), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 0;
        int rc = 0;
        if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
            char holder[512];
            read_holder(fd, holder, sizeof holder);
            snprintf(why, why_cap, "run.dir '%s' is in use by another run (%s)", dir, *holder ? holder : "holder unknown");
            rc = -1;
        }
        close(fd); /* drops the shared lock, if taken */
        return rc;
    }
    /* Absent: the nearest existing parent must be a writable folder. */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    for (;;) {
        char *slash = strrchr(parent, '/');
        if (!slash) {
            snprintf(parent, sizeof parent, ".");
        } else if (slash == parent) {
            parent[1] = 0;
        } else {
            *slash = 0;
        }
        if (stat(parent, &st) == 0) break;
        if (!strcmp(parent, ".") || !strcmp(parent, "/")) break;
    }
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, why_cap, "run.dir '%s' cannot be created: '%s' is not a folder", dir, parent);
        return -1;
    }
    if (access(parent, W_OK | X_OK) != 0) {
        snprintf(why, why_cap, "run.dir '%s' cannot be created: '%s' is not writable", dir, parent);
        return -1;
    }
    return 0;
}
