/* test_transport_failures.c - the feature transport fails loudly and in time:
 *  - a teacher that stops sending: the student ends the job after its timeout, naming the
 *    teacher's rank and the step;
 *  - a teacher that crashes (SIGKILL): the job ends non-zero, it does not hang;
 *  - a student that stops returning credits: the teachers end the job after their timeout;
 *  - a teacher on another minibatch, another resume step or another map size: a clear
 *    error before or at the step where it differs; a teacher whose schedule ends early: a
 *    clear error at once, not after the timeout.
 * Every job runs under an outer `timeout 60`, so a hang shows up as exit 124. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "feed_test.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static char out[65536];

/* Run transport_check on 3 ranks with `args`; returns the exit code, sets *secs. */
static int run(const char *args, double *secs) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "timeout 60 %s --oversubscribe --bind-to none -np 3 %s steps=100 "
             "elems=100,20000 %s", MPIEXEC, TRANSPORT_CHECK, args);
    double t0 = now();
    int code = feed_test_run(cmd, out, sizeof out);
    *secs = now() - t0;
    printf("%-70s exit %d after %.1f s\n", args, code, *secs);
    return code;
}

static void show_output_on_failure(int failures_before) {
    if (feed_test_failures > failures_before) fprintf(stderr, "output was:\n%s\n", out);
}

int main(void) {
    double secs;
    int f0 = feed_test_failures;
    int code = run("fault=sleep fault_rank=2 fault_step=50 timeout=3 teacher_timeout=60", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "rank 0: error: teacher rank 2 sent nothing for 3 s while the "
                             "student waited for step 50");
    EXPECT_STR_CONTAINS(out, "hint: the teacher rank may have died or hung");
    EXPECT(secs >= 3 && secs < 3 + 12);
    show_output_on_failure(f0);

    f0 = feed_test_failures;
    code = run("fault=crash fault_rank=1 fault_step=30 timeout=30", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "process rank 1");
    EXPECT(secs < 25); /* mpirun ends the job; nobody waits for the timeout */
    show_output_on_failure(f0);

    f0 = feed_test_failures;
    code = run("fault=sleep fault_rank=0 fault_step=20 timeout=60 teacher_timeout=3", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "the student (rank 0) returned no credit for 3 s");
    EXPECT(secs >= 3 && secs < 3 + 12);
    show_output_on_failure(f0);

    f0 = feed_test_failures;
    code = run("fault=batch fault_rank=2 fault_step=7", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "rank 0: error: teacher rank 2 (teacher 2) computed another "
                             "minibatch for step 7");
    show_output_on_failure(f0);

    f0 = feed_test_failures;
    code = run("fault=first fault_rank=1", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "teacher rank 1 (teacher 1) starts at step 1; the student at step 0");
    show_output_on_failure(f0);

    f0 = feed_test_failures;
    code = run("fault=elems fault_rank=2", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "teacher rank 2 (teacher 2) sends maps of 20001 elements per step; "
                             "the student expects 20000");
    show_output_on_failure(f0);
    f0 = feed_test_failures;
    code = run("fault=short fault_rank=2 fault_step=60", &secs);
    EXPECT(code != 0 && code != 124);
    EXPECT_STR_CONTAINS(out, "teacher rank 2 (teacher 2) ended its stream after step 59 while the "
                             "student waits for step 60");
    EXPECT(secs < 20); /* reported at once, not after the 30 s timeout */
    show_output_on_failure(f0);
    return feed_test_finish("test_transport_failures");
}
