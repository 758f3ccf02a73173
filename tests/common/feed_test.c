/* feed_test.c - see feed_test.h */
#define _POSIX_C_SOURCE 200809L
#include "feed_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int feed_test_failures = 0;
int feed_test_checks = 0;

void feed_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    feed_test_failures++;
}

int feed_test_finish(const char *name) {
    fflush(stderr);
    printf("%s: %d checks, %d failed\n", name, feed_test_checks, feed_test_failures);
    if (feed_test_checks == 0) {
        fprintf(stderr, "FAIL %s: no checks ran\n", name);
        return 1;
    }
    return feed_test_failures ? 1 : 0;
}

double feed_test_max_rel_diff(const float *a, const float *b, size_t n) {
    double maxd = 0, maxb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > maxd || isnan(d)) maxd = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > maxb) maxb = fabs(b[i]);
    }
    return maxb > 0 ? maxd / maxb : maxd;
}

int feed_test_run(const char *cmd, char *out, size_t cap) {
    size_t len = strlen(cmd) + 8;
    char *full = malloc(len);
    snprintf(full, len, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) {
        feed_test_fail(__FILE__, __LINE__, "popen failed for: %s", cmd);
        return -1;
    }
    size_t n = 0;
    if (cap) out[0] = 0;
    for (;;) {
        char buf[4096];
        size_t got = fread(buf, 1, sizeof buf, p);
        if (got == 0) break;
        for (size_t i = 0; i < got && n + 1 < cap; i++) out[n++] = buf[i];
    }
    if (cap) out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void feed_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) feed_test_fail(__FILE__, __LINE__, "cannot write %s", path);
    if (f) fclose(f);
}
