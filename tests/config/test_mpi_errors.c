/* test_mpi_errors.c - failing well on many ranks:
 *  - a bad config under `mpirun -np 3` prints one message (not three) and exits 2 quickly;
 *  - a runtime failure on one rank ends the whole job non-zero, naming that rank and the
 *    cause, instead of leaving the others hanging. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "feed_test.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
    char cmd[4096], out[65536];
    const char *bad = "[data]\npath = missing.h5\n[train]\nepoch = 3\n";
    feed_test_write_file("mpi_bad.ini", bad, strlen(bad));
    double t0 = now();
    snprintf(cmd, sizeof cmd, "timeout 60 %s --oversubscribe --bind-to none -np 3 %s mpi_bad.ini", MPIEXEC, FEED_MPI_BIN);
    int code = feed_test_run(cmd, out, sizeof out);
    double secs = now() - t0;
    printf("bad config under mpirun -np 3: exit %d after %.1f s\n", code, secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_INT_EQ(count(out, "problems in the configuration"), 1);
    EXPECT_INT_EQ(count(out, "mpi_bad.ini:4: unknown key 'epoch'"), 1);
    EXPECT_INT_EQ(count(out, "mpi_bad.ini:2: data.path: cannot read 'missing.h5'"), 1);
    EXPECT(secs < 30);
    if (feed_test_failures) fprintf(stderr, "output was:\n%s\n", out);

    t0 = now();
    snprintf(cmd, sizeof cmd, "timeout 60 %s --oversubscribe --bind-to none -np 3 %s 2", MPIEXEC, MPI_FAIL_HELPER);
    code = feed_test_run(cmd, out, sizeof out);
    secs = now() - t0;
    printf("runtime failure on rank 2 of 3: exit %d after %.1f s\n", code, secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_INT_EQ(count(out, "feed_mpi: rank 2: error: simulated failure reading 'teacher_2.h5'"), 1);
    EXPECT_STR_CONTAINS(out, "hint: this failure is injected by the test");
    EXPECT_STR_CONTAINS(out, "mpi_fail_helper.c:");
    EXPECT(secs < 30);
    if (feed_test_failures) fprintf(stderr, "output was:\n%s\n", out);
    unlink("mpi_bad.ini");
    return feed_test_finish("test_mpi_errors");
}
