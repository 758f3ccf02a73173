/* atomic_file.c - durable replacement of a file (see atomic_file.h). */
#include "atomic_file.h"

#include "feed/check.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records the failed call in *failed, keeping errno for the caller. */
static int failed_call(const char **failed, const char *what, const char *path) {
    int saved = errno;
    *failed = feed_fmt("%s('%s')", what, path);
    errno = saved;
    return -1;
}

/* Closes fd without changing errno (for error paths). */
static void close_keep_errno(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

int feed_io_create_file(const char *path, const char **failed) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd < 0 ? failed_call(failed, "open", path) : fd;
}

static int write_all(int fd, const void *data, size_t n, const char *path, const char **failed) {
    const char *p = data;
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return failed_call(failed, "write", path);
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

int feed_io_write_sync_close(int fd, const void *data, size_t n, const char *path, const char **failed) {
    if (write_all(fd, data, n, path, failed) != 0 ||
        (fsync(fd) != 0 && failed_call(failed, "fsync", path))) {
        close_keep_errno(fd);
        return -1;
    }
    return close(fd) != 0 ? failed_call(failed, "close", path) : 0;
}

int feed_io_fsync_parent_dir(const char *path, const char **failed) {
    char *copy = feed_xstrdup(path);
    char *dir = feed_xstrdup(dirname(copy)); /* dirname may modify or return static storage */
    free(copy);
    int st = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        st = failed_call(failed, "open", dir);
    } else if (fsync(fd) != 0) {
        st = failed_call(failed, "fsync", dir);
        close_keep_errno(fd);
    } else if (close(fd) != 0) {
        st = failed_call(failed, "close", dir);
    }
    free(dir);
    return st;
}

int feed_io_rename_durable(const char *tmp, const char *final, const char **failed) {
    if (rename(tmp, final) != 0) return failed_call(failed, "rename", feed_fmt("%s' -> '%s", tmp, final));
    return feed_io_fsync_parent_dir(final, failed);
}

int feed_io_copy_file(const char *src, const char *dst, const char **failed) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return failed_call(failed, "open", src);
    int out = feed_io_create_file(dst, failed);
    if (out < 0) {
        close_keep_errno(in);
        return -1;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = feed_xmalloc(CHUNK, "file copy buffer");
    int st = 0;
    for (;;) {
        ssize_t got = read(in, buf, CHUNK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) st = failed_call(failed, "read", src);
        if (got <= 0) break;
        if (write_all(out, buf, (size_t)got, dst, failed) != 0) {
            st = -1;
            break;
        }
    }
    free(buf);
    close_keep_errno(in);
    if (st != 0) {
        close_keep_errno(out);
        return -1;
    }
    return feed_io_write_sync_close(out, NULL, 0, dst, failed);
}
