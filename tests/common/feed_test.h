/* feed_test.h - a minimal test harness: every failed expectation prints file:line and the
 * values, the test goes on, and feed_test_finish() returns non-zero if anything failed. */
#ifndef FEED_TEST_H
#define FEED_TEST_H

#include <stddef.h>

extern int feed_test_failures;
extern int feed_test_checks;

void feed_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints "<name>: N checks, M failed" and returns the process exit code (0 only if no
 * failures and at least one check ran). */
int feed_test_finish(const char *name);

#define EXPECT(cond)                                                                              \
    do {                                                                                          \
        feed_test_checks++;                                                                       \
        if (!(cond)) feed_test_fail(__FILE__, __LINE__, "expected: %s", #cond);                   \
    } while (0)

#define EXPECT_INT_EQ(a, b)                                                                       \
    do {                                                                                          \
        long long a_ = (long long)(a), b_ = (long long)(b);                                       \
        feed_test_checks++;                                                                       \
        if (a_ != b_) feed_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)

#define EXPECT_STR_CONTAINS(hay, needle)                                                          \
    do {                                                                                          \
        const char *h_ = (hay), *n_ = (needle);                                                   \
        feed_test_checks++;                                                                       \
        if (!h_ || !strstr(h_, n_))                                                               \
            feed_test_fail(__FILE__, __LINE__, "'%s' not found in: %s", n_, h_ ? h_ : "(null)");  \
    } while (0)

/* |a-b| <= tol * max(1, |b|) */
#define EXPECT_NEAR_REL(a, b, tol)                                                                \
    do {                                                                                          \
        double a_ = (a), b_ = (b), t_ = (tol);                                                    \
        double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                                              \
        feed_test_checks++;                                                                       \
        if (!(fabs(a_ - b_) <= t_ * s_))                                                          \
            feed_test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %.3g)", #a, #b, a_, b_, t_); \
    } while (0)

/* max |a-b| / max |b| over n floats; returns that ratio. */
double feed_test_max_rel_diff(const float *a, const float *b, size_t n);

/* Run a shell command, capture stdout+stderr (up to cap bytes) and return its exit code. */
int feed_test_run(const char *cmd, char *out, size_t cap);

/* Write text to a file (the test fails if it cannot). */
void feed_test_write_file(const char *path, const void *data, size_t len);

#include <math.h>
#include <string.h>
#endif
